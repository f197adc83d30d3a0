from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Heartbeat
from config import registry
from config.registry import Finding as F


@pytest.fixture
def fake_checks():
    """Register test-only checks under the tag "test"; `state` decides what they find.

    `state["during"]`, when set, is called while test.windowed runs (to change the world
    in the middle of a run)."""
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
        if "during" in state:
            state["during"]()
        return []

    checks = [
        registry.Check(
            name=name, tag="test", severity="error", func=func, description=func.__doc__, **kw
        )
        for name, func, kw in (
            ("test.rows", rows, {"warn_at": 1, "error_at": 3, "windowed": True}),
            ("test.broken", broken, {}),
            ("test.windowed", windowed, {"windowed": True}),
        )
    ]
    with registry.registered(*checks):
        yield state


@pytest.fixture
def beat(db):
    """Write the scheduler heartbeat, `age` seconds old."""

    def write(age: float = 0) -> None:
        Heartbeat.objects.update_or_create(
            name="alerts",
            defaults={"beat_at": timezone.now() - timedelta(seconds=age), "ping_status": "ok"},
        )

    return write
