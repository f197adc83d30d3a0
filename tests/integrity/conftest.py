import pytest

from config import registry
from config.registry import Finding as F


@pytest.fixture
def fake_checks(monkeypatch):
    """Register test-only checks under the tag "test"; `state` decides what they find."""
    registry.autodiscover()
    state = {"bad": [], "raise": False}

    def rows(ctx):
        """Test rows: one finding per bad key."""
        for key in state["bad"]:
            yield F(
                message=f"row {key} is bad",
                key=str(key),
                sample=[key],
                details=state.get("details", {}),
            )

    def broken(ctx):
        """Raises when told to."""
        if state["raise"]:
            raise RuntimeError("the check itself is broken")
        return []

    def windowed(ctx):
        """Reports the window it was given."""
        state["since"] = ctx.since
        return []

    for name, func, kw in (
        ("test.rows", rows, {"warn_at": 1, "error_at": 3, "windowed": True}),
        ("test.broken", broken, {}),
        ("test.windowed", windowed, {"windowed": True}),
    ):
        check = registry.Check(
            name=name, tag="test", severity="error", func=func, description=func.__doc__, **kw
        )
        monkeypatch.setitem(registry._REGISTRY, name, check)
    return state
