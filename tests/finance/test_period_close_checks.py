"""Closing a period runs the financial checks first and refuses while the books do not
reconcile; explained findings do not block, and a refused close writes nothing but the run."""

from decimal import Decimal

import pytest

from audit.models import AuditEvent
from config import registry
from finance import services
from finance.exceptions import RuleViolation
from finance.models import AccountBalance, FiscalPeriod, PeriodStatus
from integrity import services as integrity
from integrity.models import CheckRun
from tests.conftest import line
from tests.finance.factories import JournalEntryFactory

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def period(ledger, post) -> FiscalPeriod:
    post(ledger.cash, ledger.equity, "100.00")
    return FiscalPeriod.objects.get(start_date__lte=ledger.today, end_date__gte=ledger.today)


def corrupt_cache(account, debit: str = "100.50") -> None:
    AccountBalance.objects.filter(account=account).update(debit_total=D(debit))


def close_url(period: FiscalPeriod) -> str:
    return f"/api/v1/periods/{period.pk}/close/"


def test_close_is_refused_with_422_while_the_balance_cache_is_corrupted(
    api, approver, ledger, period
):
    corrupt_cache(ledger.cash)
    events = AuditEvent.objects.count()
    response = api.as_user(approver).post(close_url(period))
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "period.checks_failing"
    run = CheckRun.objects.get(trigger="period_close")
    assert (run.status, run.tags, run.triggered_by) == ("fail", ["finance"], approver)
    assert f"#{run.pk}" in error["message"] and "finance.balance_cache" in error["message"]
    assert error["fields"]["non_field_errors"][0]["code"] == "period.checks_failing"
    # The run is stored (with its audit events); the period is untouched.
    period.refresh_from_db()
    assert period.status == PeriodStatus.OPEN and period.closed_at is None
    written = [e.action for e in AuditEvent.objects.order_by("id")[events:]]
    assert {"checks.requested", "checks.completed"} <= set(written)
    assert not [a for a in written if a.startswith("period.")]

    corrupt_cache(ledger.cash, "100.00")  # fixed
    response = api.as_user(approver).post(close_url(period))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "closed"
    assert CheckRun.objects.filter(trigger="period_close").count() == 2


def test_close_is_refused_when_a_check_could_not_run(approver, period):
    def broken(ctx):
        raise RuntimeError("database went away")

    check = registry.all_checks()["finance.trial_balance"]
    stand_in = registry.Check(
        name=check.name, tag="finance", severity="critical", func=broken, description="broken"
    )
    with registry.registered(stand_in), pytest.raises(RuleViolation) as exc:
        services.period_close(period=period, actor=approver)
    assert exc.value.code == "period.checks_failing"
    assert "finance.trial_balance" in exc.value.message
    period.refresh_from_db()
    assert period.is_open


def test_explained_findings_do_not_block_the_close(approver, approver2, ledger, period):
    corrupt_cache(ledger.cash)
    run = integrity.checks_run(trigger="command", tags=["finance"])
    found = run.findings.get(check_name="finance.balance_cache")
    integrity.finding_explain(finding=found, actor=approver2, reason="Opening balance by hand")
    closed = services.period_close(period=period, actor=approver)
    assert closed.status == PeriodStatus.CLOSED
    close_run = CheckRun.objects.filter(trigger="period_close").get()
    result = close_run.results.get(check_name="finance.balance_cache")
    assert (result.status, result.explained_count) == ("pass", 1)


def test_a_period_that_cannot_close_anyway_is_refused_without_a_check_run(
    approver, clerk, ledger, period
):
    entry = JournalEntryFactory(
        entry_date=ledger.today,
        description="Waiting",
        created_by=clerk,
        lines=[line(ledger.cash, "D", D("1.00")), line(ledger.equity, "C", D("1.00"))],
    )
    services.journal_entry_submit(entry=entry, actor=clerk)
    with pytest.raises(RuleViolation) as exc:
        services.period_close(period=period, actor=approver)
    assert exc.value.code == "period.has_pending_entries"
    services.journal_entry_reject(entry=entry, actor=approver)
    services.period_close(period=period, actor=approver)
    with pytest.raises(RuleViolation) as exc:
        services.period_close(period=period, actor=approver)
    assert exc.value.code == "period.closed"
    assert CheckRun.objects.count() == 1  # only the close that went through ran the checks


def test_who_explained_a_finding_cannot_also_close_on_it(approver, ledger, period):
    corrupt_cache(ledger.cash)
    run = integrity.checks_run(trigger="command", tags=["finance"])
    found = run.findings.get(check_name="finance.balance_cache")
    integrity.finding_explain(finding=found, actor=approver, reason="Looks fine to me")
    with pytest.raises(RuleViolation) as exc:
        services.period_close(period=period, actor=approver)
    assert exc.value.code == "period.checks_failing"
    assert FiscalPeriod.objects.get(pk=period.pk).status == PeriodStatus.OPEN


def test_a_threshold_override_does_not_let_a_close_through(approver, ledger, period, settings):
    settings.CHECK_THRESHOLDS = {"finance.balance_cache": {"warn": 1, "error": None}}
    corrupt_cache(ledger.cash)
    with pytest.raises(RuleViolation) as exc:
        services.period_close(period=period, actor=approver)
    assert "finance.balance_cache" in exc.value.message
    run = CheckRun.objects.get(trigger="period_close")
    assert run.results.get(check_name="finance.balance_cache").status == "warn"


def test_impossible_ledger_states_block_the_close(approver, ledger, period):
    # A closed period without its closing time: tagged integrity, but the ledger's own state.
    other = FiscalPeriod.objects.exclude(pk=period.pk).order_by("start_date").first()
    FiscalPeriod.objects.filter(pk=other.pk).update(status="closed")
    with pytest.raises(RuleViolation) as exc:
        services.period_close(period=period, actor=approver)
    assert "finance.impossible_states" in exc.value.message
    FiscalPeriod.objects.filter(pk=other.pk).update(status="open")
    assert services.period_close(period=period, actor=approver).status == PeriodStatus.CLOSED


def test_failing_integrity_checks_of_other_kinds_do_not_block_the_close(approver, period):
    # No scheduler heartbeat in tests: integrity.scheduler_alive fails, and is not run here.
    assert (
        integrity.checks_run(trigger="command", checks=["integrity.scheduler_alive"]).status
        == "fail"
    )
    closed = services.period_close(period=period, actor=approver)
    assert closed.status == PeriodStatus.CLOSED
