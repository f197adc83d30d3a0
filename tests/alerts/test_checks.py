"""alerts.impossible_states: alerts' own rows in states their workflow cannot produce."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from alerts.models import Alert
from integrity.models import CheckRun
from tests.alerts.factories import AlertFactory


def run_alert_states(*, fails: bool) -> CheckRun:
    if fails:
        with pytest.raises(CommandError, match=r"alerts\.impossible_states"):
            call_command("run_checks", "--check", "alerts.impossible_states")
    else:
        call_command("run_checks", "--check", "alerts.impossible_states")
    return CheckRun.objects.latest("id")


def test_alerts_written_around_the_services_are_found_and_named(db):
    AlertFactory(state="resolved", resolved_at=timezone.now())  # as the services leave it
    resolved = AlertFactory(state="resolved", resolved_at=None)
    acked = AlertFactory(state="acknowledged", acknowledged_at=None)

    run = run_alert_states(fails=True)

    result = run.results.get(check_name="alerts.impossible_states")
    assert result.status == "fail"
    found = {f.key: f.sample for f in run.findings.filter(check_name="alerts.impossible_states")}
    assert found == {
        "resolved without resolved_at": [resolved.pk],
        "acknowledged without acknowledged_at": [acked.pk],
    }
    assert Alert.objects.filter(
        source="checks", key="alerts.impossible_states", state="firing"
    ).exists()


def test_alerts_as_the_services_leave_them_pass(db):
    AlertFactory(state="acknowledged", acknowledged_at=timezone.now())
    AlertFactory(state="firing")

    run = run_alert_states(fails=False)

    assert run.results.get(check_name="alerts.impossible_states").status == "pass"
