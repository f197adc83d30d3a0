"""The check framework: runs, results, findings, thresholds, alerts, explanations, command."""

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from alerts.models import Alert
from audit.models import AuditEvent
from config import registry
from integrity import services
from integrity.models import CheckResult, CheckRun, Finding, FindingExplanation

pytestmark = pytest.mark.django_db


def alert_for(key, source="checks"):
    return Alert.objects.filter(source=source, key=key).order_by("-pk").first()


def result_of(run, name) -> CheckResult:
    return run.results.get(check_name=name)


def test_run_stores_results_findings_and_audit_events(fake_checks, operator):
    fake_checks["bad"] = [7]
    run = services.checks_run(trigger="command", actor=operator, tags=["test"])
    run.refresh_from_db()
    assert run.status == "warn"
    assert run.summary == {"warn": 1, "pass": 2}
    assert run.started_at and run.finished_at and run.duration_ms is not None
    result = result_of(run, "test.rows")
    assert (result.status, result.failing_count, result.warn_at, result.error_at) == (
        "warn",
        1,
        1,
        3,
    )
    finding = run.findings.get()
    assert (finding.check_name, finding.message, finding.sample) == (
        "test.rows",
        "row 7 is bad",
        [7],
    )
    events = AuditEvent.objects.filter(object_type="integrity.checkrun", object_id=str(run.pk))
    actions = list(events.order_by("id").values_list("action", flat=True))
    assert actions == ["checks.requested", "checks.completed"]


def test_thresholds_decide_pass_warn_fail_and_settings_override(fake_checks, settings):
    fake_checks["bad"] = [1, 2, 3]
    assert (
        result_of(services.checks_run(trigger="command", checks=["test.rows"]), "test.rows").status
        == "fail"
    )
    settings.CHECK_THRESHOLDS = {"test.rows": {"warn": 5, "error": None}}
    result = result_of(services.checks_run(trigger="command", checks=["test.rows"]), "test.rows")
    assert (result.status, result.warn_at, result.error_at) == ("pass", 5, None)


def test_a_check_that_raises_is_an_error_and_the_others_still_run(fake_checks):
    fake_checks.update(bad=[1], **{"raise": True})
    run = services.checks_run(trigger="command", tags=["test"])
    assert run.status == "error"
    broken = result_of(run, "test.broken")
    assert broken.status == "error" and "the check itself is broken" in broken.error
    assert result_of(run, "test.rows").status == "warn"
    alert = alert_for("test.broken")
    assert alert.state == "firing" and alert.severity == "error"


def test_failing_check_raises_its_alert_and_a_full_passing_run_resolves_it(fake_checks):
    fake_checks["bad"] = [1, 2, 3]
    services.checks_run(trigger="command", checks=["test.rows"])
    alert = alert_for("test.rows")
    assert alert.state == "firing" and alert.severity == "error"
    assert alert.details["failing_count"] == 3 and alert.details["sample"] == [1]
    fake_checks["bad"] = []
    # A windowed run saw only recent rows: it must not clear what a full run found.
    services.checks_run(trigger="schedule", checks=["test.rows"], since=timezone.now())
    assert alert_for("test.rows").state == "firing"
    services.checks_run(trigger="schedule", checks=["test.rows"])
    assert alert_for("test.rows").state == "resolved"


def test_a_check_that_ignores_the_window_resolves_in_a_windowed_run(fake_checks):
    fake_checks["raise"] = True
    services.checks_run(trigger="command", checks=["test.broken"])
    assert alert_for("test.broken").state == "firing"
    fake_checks["raise"] = False
    services.checks_run(trigger="schedule", checks=["test.broken"], since=timezone.now())
    assert alert_for("test.broken").state == "resolved"


def test_windowed_checks_get_the_window_and_others_a_full_scan(fake_checks):
    since = timezone.now() - timedelta(hours=2)
    services.checks_run(trigger="schedule", tags=["test"], since=since)
    assert fake_checks["since"] == since


def test_explained_finding_stops_counting_until_it_changes_or_is_withdrawn(fake_checks, approver):
    fake_checks["bad"] = [1]
    run = services.checks_run(trigger="command", checks=["test.rows"])
    services.finding_explain(
        finding=run.findings.get(), actor=approver, reason="Known: migrated from the old system"
    )
    again = services.checks_run(trigger="command", checks=["test.rows"])
    result = result_of(again, "test.rows")
    assert (result.status, result.failing_count, result.explained_count) == ("pass", 0, 1)
    assert again.findings.get().explanation.reason == "Known: migrated from the old system"
    assert alert_for("test.rows").state == "resolved"
    fake_checks["bad"] = [1, 2]  # a new bad row is not covered by the old explanation
    assert (
        result_of(
            services.checks_run(trigger="command", checks=["test.rows"]), "test.rows"
        ).failing_count
        == 1
    )
    fake_checks["bad"] = [1]
    latest = services.checks_run(trigger="command", checks=["test.rows"])
    services.finding_explanation_withdraw(finding=latest.findings.get(), actor=approver)
    explanation = FindingExplanation.objects.get()
    assert explanation.withdrawn_by == approver
    # History stays: the runs it covered still show the finding explained, and why.
    assert again.findings.get().explanation == explanation
    assert (
        result_of(services.checks_run(trigger="command", checks=["test.rows"]), "test.rows").status
        == "warn"
    )
    services.finding_explain(finding=latest.findings.get(), actor=approver, reason="again")
    assert FindingExplanation.objects.filter(withdrawn_at__isnull=True).count() == 1
    actions = set(
        AuditEvent.objects.filter(action__startswith="check_finding.").values_list(
            "action", flat=True
        )
    )
    assert actions == {"check_finding.explained", "check_finding.explanation_withdrawn"}


def test_an_explanation_does_not_cover_a_grown_difference(fake_checks, approver):
    fake_checks.update(bad=[1], details={"difference": "0.01"})
    finding = services.checks_run(trigger="command", checks=["test.rows"]).findings.get()
    services.finding_explain(finding=finding, actor=approver, reason="rounding, FIN-7")
    assert (
        result_of(services.checks_run(trigger="command", checks=["test.rows"]), "test.rows").status
        == "pass"
    )
    fake_checks["details"] = {"difference": "99.00"}  # same row, same count: more money
    assert (
        result_of(services.checks_run(trigger="command", checks=["test.rows"]), "test.rows").status
        == "warn"
    )


def test_liveness_findings_cannot_be_explained(approver):
    run = services.checks_run(trigger="command", checks=["integrity.scheduler_alive"])
    with pytest.raises(services.FindingError) as exc:
        services.finding_explain(finding=run.findings.get(), actor=approver, reason="ignore")
    assert exc.value.code == "finding.not_explainable"
    assert not FindingExplanation.objects.exists()


def test_explaining_needs_a_reason_and_only_once(fake_checks, approver):
    fake_checks["bad"] = [1]
    finding = services.checks_run(trigger="command", checks=["test.rows"]).findings.get()
    with pytest.raises(services.FindingError):
        services.finding_explain(finding=finding, actor=approver, reason="  ")
    services.finding_explain(finding=finding, actor=approver, reason="ok")
    with pytest.raises(services.FindingError):
        services.finding_explain(finding=finding, actor=approver, reason="again")
    assert FindingExplanation.objects.count() == 1


def test_unknown_tag_or_check_is_refused_and_nothing_is_stored():
    with pytest.raises(services.CheckRunError) as exc:
        services.checks_run(trigger="command", tags=["nope"])
    assert exc.value.fields == {
        "tags": ["unknown tag 'nope' (known: " + exc.value.message.split("(known: ")[1]]
    }
    with pytest.raises(services.CheckRunError):
        services.checks_run(trigger="command", checks=["no.such.check"])
    assert not CheckRun.objects.exists()


def test_stale_runs_are_abandoned(fake_checks, settings):
    run = services.checkrun_create(trigger="api", tags=["test"])
    CheckRun.objects.filter(pk=run.pk).update(
        created_at=timezone.now() - timedelta(minutes=settings.CHECK_RUN_STALE_MINUTES + 1)
    )
    assert services.checkruns_abandon_stale() == 1
    run.refresh_from_db()
    assert run.status == "abandoned"
    with pytest.raises(services.CheckRunError):
        services.checkrun_execute(run_id=run.pk)


def test_a_run_abandoned_while_it_ran_stays_abandoned(fake_checks):
    run = services.checkrun_create(trigger="api", tags=["test"])

    def abandon_midway():
        """Marks its own run abandoned, as the stale-run sweep would during a long run."""
        CheckRun.objects.filter(pk=run.pk).update(status="abandoned")

    fake_checks["during"] = abandon_midway
    finished = services.checkrun_execute(run_id=run.pk)
    assert finished.status == "abandoned"
    assert not AuditEvent.objects.filter(action="checks.completed").exists()


def test_old_runs_are_purged_but_explanations_stay(fake_checks, approver, settings):
    fake_checks["bad"] = [1]
    run = services.checks_run(trigger="command", checks=["test.rows"])
    services.finding_explain(finding=run.findings.get(), actor=approver, reason="fine")
    CheckRun.objects.filter(pk=run.pk).update(
        created_at=timezone.now() - timedelta(days=settings.CHECK_RUN_RETENTION_DAYS + 1)
    )
    assert services.checkruns_purge() >= 1
    assert not Finding.objects.exists() and FindingExplanation.objects.count() == 1


# The command ---------------------------------------------------------------------------------


def test_command_exit_status_follows_fail_on(fake_checks, capsys):
    call_command("run_checks", "--tag", "test")  # all pass: exit 0
    fake_checks["bad"] = [1]  # warn
    call_command("run_checks", "--tag", "test")  # default --fail-on error: warn is fine
    with pytest.raises(CommandError) as exc:
        call_command("run_checks", "--tag", "test", "--fail-on", "warning")
    assert exc.value.returncode == 1 and "test.rows (warn)" in str(exc.value)
    fake_checks["bad"] = [1, 2, 3]  # fail
    with pytest.raises(CommandError) as exc:
        call_command("run_checks", "--check", "test.rows")
    assert exc.value.returncode == 1
    out = capsys.readouterr().out
    assert "FAIL  test.rows (3 failing" in out and "row 3 is bad" in out
    with pytest.raises(CommandError) as exc:
        call_command("run_checks", "--tag", "nope")
    assert exc.value.returncode == 2


def test_command_json_and_list(fake_checks, capsys):
    fake_checks["bad"] = [5]
    call_command("run_checks", "--check", "test.rows", "--json")
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "warn"
    assert data["findings"][0]["sample"] == [5] and data["results"][0]["check"] == "test.rows"
    call_command("run_checks", "--list")
    listing = capsys.readouterr().out
    assert "integrity.audit_references" in listing and "test.rows" in listing


def test_command_bad_arguments_exit_2_in_a_real_process():
    """The exit status as a cron job or a runbook script sees it (no database is touched)."""
    done = subprocess.run(
        [sys.executable, "manage.py", "run_checks", "--tag", "nope"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        cwd=settings.BASE_DIR,
        timeout=120,
    )
    assert done.returncode == 2 and "unknown tag 'nope'" in done.stderr


def test_every_check_has_a_docs_row_and_a_runbook_entry():
    docs = settings.BASE_DIR / "docs"
    checks_md = (docs / "checks.md").read_text()
    runbooks = (docs / "runbooks.md").read_text()
    for check in registry.all_checks().values():
        source, key = check.alert
        assert f"| `{check.name}` | {check.tag} | {check.severity} |" in checks_md, check.name
        assert f"\n## {source}/{key}\n" in runbooks, check.name
        assert f"(runbooks.md#{check.runbook_anchor})" in checks_md, check.name
