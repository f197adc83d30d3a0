"""`make audit-deps` (run by `make test`): a known vulnerability fails it; a look-up that cannot
be made (no network, an index that answers nothing) warns and passes. Driven through make with
a stand-in pip-audit that answers as the real one does in each case."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FOUND = {
    "dependencies": [
        {"name": "django", "version": "5.2.0", "vulns": []},
        {
            "name": "requests",
            "version": "2.0.0",
            "vulns": [{"id": "GHSA-test-0001", "fix_versions": ["2.32.4"], "aliases": []}],
        },
    ],
    "fixes": [],
}
CLEAN = {"dependencies": [{"name": "django", "version": "5.2.0", "vulns": []}], "fixes": []}
# What pip-audit reports when the index has no per-version JSON (this machine's proxy): every
# package skipped, and "No known vulnerabilities found" with exit status 0.
UNANSWERED = {
    "dependencies": [
        {
            "name": "django",
            "skip_reason": "Dependency not found on PyPI and could not be audited: django (5.2)",
        }
    ],
    "fixes": [],
}
NO_NETWORK = (
    "ERROR:pip_audit._cli:Could not connect to PyPI's vulnerability feed\n"
    "Tip: your network may be blocking this service. Try another service with `-s SERVICE`\n"
)


def _fake_pip_audit(tmp_path: Path, *, report: dict | None, stderr: str, status: int) -> Path:
    """A pip-audit that writes `report` where --output says, prints `stderr`, exits `status`,
    and keeps the arguments it was given."""
    script = tmp_path / "pip-audit"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(tmp_path / 'args.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"report = {report!r}\n"
        "if report is not None:\n"
        "    open(sys.argv[sys.argv.index('--output') + 1], 'w').write(json.dumps(report))\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({status})\n"
    )
    script.chmod(0o755)
    return script


def _make_audit_deps(pip_audit: Path) -> subprocess.CompletedProcess:
    # -o install-test: the shared venv is not reinstalled by the test.
    return subprocess.run(
        ["make", "--no-print-directory", "-o", "install-test", "audit-deps"],
        cwd=ROOT,
        env=os.environ | {"PIP_AUDIT": str(pip_audit), "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_known_vulnerability_fails(tmp_path):
    fake = _fake_pip_audit(tmp_path, report=FOUND, stderr="Found 1 known vulnerability\n", status=1)
    result = _make_audit_deps(fake)
    assert result.returncode != 0
    assert "VULNERABLE requests 2.0.0: GHSA-test-0001 (fixed in 2.32.4)" in result.stdout


def test_no_vulnerability_passes_and_audits_the_venv_not_the_project(tmp_path):
    fake = _fake_pip_audit(tmp_path, report=CLEAN, stderr="", status=0)
    result = _make_audit_deps(fake)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no known vulnerabilities in the 1 packages" in result.stdout
    args = json.loads((tmp_path / "args.json").read_text())
    assert {"--local", "--skip-editable"} <= set(args)


def test_no_network_warns_and_passes(tmp_path):
    fake = _fake_pip_audit(tmp_path, report=None, stderr=NO_NETWORK, status=1)
    result = _make_audit_deps(fake)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning: audit-deps could not look up known vulnerabilities" in result.stdout


def test_an_index_that_answers_nothing_warns_instead_of_passing_silently(tmp_path):
    fake = _fake_pip_audit(tmp_path, report=UNANSWERED, stderr="", status=0)
    result = _make_audit_deps(fake)
    assert result.returncode == 0
    assert "warning: audit-deps could not look up 1 of 1 packages" in result.stdout


@pytest.mark.parametrize("stderr", ["usage: pip-audit: error: unrecognized arguments: --bad\n"])
def test_another_pip_audit_failure_fails(tmp_path, stderr):
    fake = _fake_pip_audit(tmp_path, report=None, stderr=stderr, status=2)
    result = _make_audit_deps(fake)
    assert result.returncode != 0
    assert "pip-audit failed (exit 2)" in result.stdout


def test_make_test_runs_the_audit():
    plan = subprocess.run(
        ["make", "-n", "-o", "install-test", "test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    # Under a make of its own (make test runs pytest), make names the directory it enters.
    commands = [line for line in plan.splitlines() if not line.startswith("make[")]
    assert "scripts/audit-deps.sh" in commands[0]
