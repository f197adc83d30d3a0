"""Fiscal periods: open, rename, close once the books reconcile, reopen."""

from datetime import date
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record, diff, snapshot
from finance import rules
from finance.models import EntrySequence, EntryStatus, FiscalPeriod, PeriodStatus
from finance.rules import raise_if, violation
from integrity import services as integrity
from integrity.models import CheckRun, CheckStatus

__all__ = [
    "PERIOD_AUDITED",
    "PERIOD_CLOSE_CHECKS",
    "PERIOD_CLOSE_CHECK_TAGS",
    "check_period_closable",
    "period_close",
    "period_create",
    "period_rename",
    "period_reopen",
]

PERIOD_AUDITED = ("name", "start_date", "end_date", "fiscal_year", "status")
PERIOD_CLOSE_CHECK_TAGS = ["finance"]
# Tagged integrity (it runs nightly with them), but a ledger state a close must not hide.
PERIOD_CLOSE_CHECKS = ["finance.impossible_states"]


@transaction.atomic
def period_create(
    *, name: str, start_date: date, end_date: date, fiscal_year: int | None = None
) -> FiscalPeriod:
    raise_if(rules.validate_period(start_date=start_date, end_date=end_date))
    period = FiscalPeriod.objects.create(
        name=name,
        start_date=start_date,
        end_date=end_date,
        fiscal_year=fiscal_year or start_date.year,
    )
    EntrySequence.objects.get_or_create(fiscal_year=period.fiscal_year)
    audit_record(
        action="period.created", obj=period, changes=diff({}, snapshot(period, PERIOD_AUDITED))
    )
    return period


@transaction.atomic
def period_rename(*, period: FiscalPeriod, name: str) -> FiscalPeriod:
    period = FiscalPeriod.objects.select_for_update().get(pk=period.pk)
    before = period.name
    period.name = name
    period.save(update_fields=["name"])
    if name != before:
        audit_record(action="period.renamed", obj=period, changes={"name": [before, name]})
    return period


def period_close(*, period: FiscalPeriod, actor: User) -> FiscalPeriod:
    """Close a period once the books reconcile.

    First the financial checks run (a stored check run, trigger period_close) outside any
    transaction, so that a full reconciliation neither holds the period lock nor stalls
    postings. While a check fails with unexplained error or critical findings, or could not
    run at all (the books could not be verified), the close is refused with
    `period.checks_failing` and nothing but the run is written; explained findings do not
    block. Then `do_period_close` closes it under the period's row lock.
    """
    # The cheap refusals first: no reconciliation for a period that cannot close anyway.
    period = FiscalPeriod.objects.get(pk=period.pk)
    check_period_closable(period)
    check_period_reconciles(period, actor)
    return do_period_close(period=period, actor=actor)


def check_period_closable(period: FiscalPeriod) -> None:
    """Refuses a period that is closed already or still has entries awaiting approval."""
    if period.status == PeriodStatus.CLOSED:
        raise_if([violation("period.closed", period=period.name)])
    if period.entries.filter(status=EntryStatus.PENDING_APPROVAL).exists():
        raise_if([violation("period.has_pending_entries", period=period.name)])


def check_period_reconciles(period: FiscalPeriod, actor: User) -> None:
    """Runs the close's checks (a stored run) and refuses while one of them blocks."""
    run = integrity.checks_run(
        trigger=CheckRun.Trigger.PERIOD_CLOSE,
        actor=actor,
        tags=PERIOD_CLOSE_CHECK_TAGS,
        checks=PERIOD_CLOSE_CHECKS,
    )
    failing = _failing_checks(run, actor)
    if failing:
        raise_if(
            [
                violation(
                    "period.checks_failing",
                    period=period.name,
                    run=run.pk,
                    checks=", ".join(failing),
                )
            ]
        )


def _failing_checks(run: CheckRun, actor: User) -> list[str]:
    """Checks of `run` that block a close: broken ones, and any with a finding of error or
    critical severity that is unexplained, whatever thresholds make of it (an override may
    turn the check's outcome into a warning; the books are still wrong), or explained by the
    person closing (maker-checker: who explains a finding away does not also close on it)."""
    broken = run.results.filter(status=CheckStatus.ERROR).values_list("check_name", flat=True)
    serious = run.findings.filter(severity__in=("error", "critical"))
    blocking = serious.filter(
        Q(explanation__isnull=True) | Q(explanation__explained_by=actor)
    ).values_list("check_name", flat=True)
    return sorted({*broken, *blocking})


@transaction.atomic
def do_period_close(*, period: FiscalPeriod, actor: User) -> FiscalPeriod:
    """Locks the period row, so it waits for postings in flight; judges the period again."""
    period = FiscalPeriod.objects.select_for_update().get(pk=period.pk)
    check_period_closable(period)
    return _period_set(
        period,
        action="period.closed",
        actor=actor,
        status=PeriodStatus.CLOSED,
        closed_at=timezone.now(),
        closed_by=actor,
    )


@transaction.atomic
def period_reopen(*, period: FiscalPeriod, actor: User) -> FiscalPeriod:
    period = FiscalPeriod.objects.select_for_update().get(pk=period.pk)
    if period.status != PeriodStatus.CLOSED:
        raise_if([violation("period.not_closed", period=period.name)])
    return _period_set(
        period,
        action="period.reopened",
        actor=actor,
        status=PeriodStatus.OPEN,
        reopened_at=timezone.now(),
        reopened_by=actor,
    )


def _period_set(period: FiscalPeriod, *, action: str, actor: User, **values: Any) -> FiscalPeriod:
    """Save `values` on a locked period and record the change with its before/after values."""
    fields = list(values)
    before = snapshot(period, fields)
    for name, value in values.items():
        setattr(period, name, value)
    period.save(update_fields=fields)
    meta = {
        "fiscal_year": period.fiscal_year,
        "start_date": period.start_date,
        "end_date": period.end_date,
    }
    audit_record(
        action=action,
        obj=period,
        actor=actor,
        changes=diff(before, snapshot(period, fields)),
        metadata=meta,
    )
    return period
