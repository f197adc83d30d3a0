"""docs/audit.md lists every action code the trail can hold, as auditors read it there."""

from pathlib import Path

from audit.actions import catalogue

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"


def test_every_action_is_documented_for_auditors():
    text = DOC.read_text()
    missing = [action for action in catalogue() if f"| `{action}` |" not in text]
    assert not missing, f"add these to the Actions table in docs/audit.md: {missing}"
