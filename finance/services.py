"""Ledger services: the only code that changes ledger state.

Lock order, everywhere: fiscal period -> entry sequence -> journal entry -> account balances
(by account id). Every posting takes the fiscal year's sequence row first, so postings in one
year are serialised there and numbers stay gapless; balance rows are still locked in id order
so that code paths which skip the sequence (none today) cannot deadlock with postings.

After each posting commits, the touched accounts' cached balances are re-checked against
their lines (`account_balances_recheck`, see FINANCE_REALTIME_RECHECK).
"""

import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from alerts import services as alerting
from audit.services import audit_record, diff, snapshot
from finance import money, rules, selectors
from finance.models import (
    Account,
    AccountBalance,
    BalanceCheckpoint,
    EntrySequence,
    EntrySource,
    EntryStatus,
    FiscalPeriod,
    JournalEntry,
    JournalLine,
    PeriodStatus,
    Side,
)
from finance.rules import LineInput, raise_if, violation
from integrity import services as integrity
from integrity.models import CheckRun, CheckStatus
from integrity.transactions import OperationContext, register_operation, run_operation

checks_logger = logging.getLogger("ledgerguard.checks")

# Accounts -------------------------------------------------------------------

ACCOUNT_EDITABLE = (
    "name",
    "type",
    "currency",
    "parent",
    "is_active",
    "allow_negative",
    "is_control",
    "description",
)
LOCKED_WHEN_POSTED = ("type", "currency")
ACCOUNT_AUDITED = ("code", *ACCOUNT_EDITABLE)
PERIOD_AUDITED = ("name", "start_date", "end_date", "fiscal_year", "status")


def _has_lines(account: Account) -> bool:
    return JournalLine.objects.filter(account=account).exists()


@transaction.atomic
def account_create(
    *,
    code: str,
    name: str,
    type: str,
    currency: str,
    parent: Account | None = None,
    is_active: bool = True,
    allow_negative: bool = False,
    is_control: bool = False,
    description: str = "",
) -> Account:
    raise_if(rules.validate_account(account=None, type=type, currency=currency, parent=parent))
    account = Account.objects.create(
        code=code,
        name=name,
        type=type,
        currency=currency,
        parent=parent,
        is_active=is_active,
        allow_negative=allow_negative,
        is_control=is_control,
        description=description,
    )
    AccountBalance.objects.create(account=account)
    audit_record(
        action="account.created", obj=account, changes=diff({}, snapshot(account, ACCOUNT_AUDITED))
    )
    return account


@transaction.atomic
def account_update(*, account: Account, **changes: Any) -> Account:
    unknown = set(changes) - set(ACCOUNT_EDITABLE)
    if unknown:
        raise TypeError(f"account_update cannot change {sorted(unknown)}")
    account = Account.objects.select_for_update().get(pk=account.pk)
    changed = [f for f, v in changes.items() if getattr(account, f) != v]
    locked = [f for f in changed if f in LOCKED_WHEN_POSTED]
    if locked and _has_lines(account):
        raise_if(
            [
                violation("account.has_postings", field=f, account=account.code, what=f)
                for f in locked
            ]
        )
    raise_if(
        rules.validate_account(
            account=account,
            type=changes.get("type", account.type),
            currency=changes.get("currency", account.currency),
            parent=changes.get("parent", account.parent),
        )
    )
    before = snapshot(account, changed)
    for f in changed:
        setattr(account, f, changes[f])
    if changed:
        account.save(update_fields=[*changed, "updated_at"])
        audit_record(
            action="account.updated", obj=account, changes=diff(before, snapshot(account, changed))
        )
    return account


@transaction.atomic
def account_delete(*, account: Account) -> None:
    account = Account.objects.select_for_update().get(pk=account.pk)
    if _has_lines(account):
        raise_if([violation("account.has_postings", account=account.code, what="type or currency")])
    if account.children.exists():
        raise_if([violation("account.has_children", account=account.code)])
    audit_record(
        action="account.deleted", obj=account, changes=diff(snapshot(account, ACCOUNT_AUDITED), {})
    )
    AccountBalance.objects.filter(account=account).delete()
    account.delete()


# Fiscal periods -------------------------------------------------------------


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


PERIOD_CLOSE_CHECK_TAGS = ["finance"]
# Tagged integrity (it runs nightly with them), but a ledger state a close must not hide.
PERIOD_CLOSE_CHECKS = ["finance.impossible_states"]


def period_close(*, period: FiscalPeriod, actor) -> FiscalPeriod:
    """Close a period once the books reconcile.

    First the financial checks run (a stored check run, trigger period_close) outside any
    transaction, so that a full reconciliation neither holds the period lock nor stalls
    postings. While a check fails with unexplained error or critical findings, or could not
    run at all (the books could not be verified), the close is refused with
    `period.checks_failing` and nothing but the run is written; explained findings do not
    block. Then `_period_close_locked` closes it under the period's row lock.
    """
    # The cheap refusals first: no reconciliation for a period that cannot close anyway.
    period = FiscalPeriod.objects.get(pk=period.pk)
    _check_closable(period)
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
    return _period_close_locked(period=period, actor=actor)


def _check_closable(period: FiscalPeriod) -> None:
    if period.status == PeriodStatus.CLOSED:
        raise_if([violation("period.closed", period=period.name)])
    if period.entries.filter(status=EntryStatus.PENDING_APPROVAL).exists():
        raise_if([violation("period.has_pending_entries", period=period.name)])


def _failing_checks(run: CheckRun, actor) -> list[str]:
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
def _period_close_locked(*, period: FiscalPeriod, actor) -> FiscalPeriod:
    """Locks the period row, so it waits for postings in flight; judges the period again."""
    period = FiscalPeriod.objects.select_for_update().get(pk=period.pk)
    _check_closable(period)
    return _period_set(
        period,
        action="period.closed",
        actor=actor,
        status=PeriodStatus.CLOSED,
        closed_at=timezone.now(),
        closed_by=actor,
    )


@transaction.atomic
def period_reopen(*, period: FiscalPeriod, actor) -> FiscalPeriod:
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


def _period_set(period: FiscalPeriod, *, action: str, actor, **values: Any) -> FiscalPeriod:
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


# Journal entries ------------------------------------------------------------


def line_inputs(lines: Sequence[Mapping[str, Any]]) -> list[LineInput]:
    """Build rule inputs from dicts with account (Account or id), side, amount, ...

    Accounts are always read afresh (one query): a caller's instance may be stale, and the
    rules must judge the account as it is now (active, currency).
    """
    ids = set()
    for ln in lines:
        account = ln.get("account")
        ids.add(account.pk if isinstance(account, Account) else account)
    ids.discard(None)
    by_id = Account.objects.in_bulk([i for i in ids if isinstance(i, int)])
    result = []
    for ln in lines:
        account = ln.get("account")
        key = account.pk if isinstance(account, Account) else account
        result.append(
            LineInput(
                account=by_id.get(key) if isinstance(key, int) else None,
                side=ln.get("side", ""),
                amount=ln["amount"],
                currency=ln.get("currency") or None,
                description=ln.get("description", ""),
            )
        )
    return result


def _write_lines(entry: JournalEntry, lines: Sequence[LineInput]) -> None:
    rows = [
        JournalLine(
            entry=entry,
            line_no=n,
            account=line.account,
            side=line.side,
            amount=line.amount,
            currency=line.effective_currency,
            description=line.description,
        )
        for n, line in enumerate(lines, start=1)
    ]
    bulk_create_with_history(rows, JournalLine, batch_size=500)


def _amount(amount: Decimal, currency: str) -> str:
    # Stored amounts carry the column's places, new ones the currency's: compare like with like.
    return str(money.quantize(amount, currency))


def _line_rows(lines: Sequence[LineInput]) -> list[list[str]]:
    """Lines as the trail keeps them: account code, side, amount, currency."""
    return [
        [
            line.account.code if line.account else "",
            line.side,
            _amount(line.amount, line.effective_currency),
            line.effective_currency,
        ]
        for line in lines
    ]


def _lines_summary(lines: Sequence[LineInput]) -> dict[str, Any]:
    """Line count and debit total per currency: what a reviewer of the trail checks first."""
    totals: dict[str, Decimal] = {}
    for line in lines:
        if line.side == Side.DEBIT:
            currency = line.effective_currency
            totals[currency] = totals.get(currency, Decimal(0)) + line.amount
    return {
        "line_count": len(lines),
        "totals": {c: _amount(t, c) for c, t in sorted(totals.items())},
    }


def _entry_meta(entry: JournalEntry, lines: Sequence[LineInput]) -> dict[str, Any]:
    return {
        "entry_date": entry.entry_date,
        "description": entry.description[:200],
        "source": entry.source,
        **_lines_summary(lines),
    }


ENTRY_AUDITED = ("entry_date", "period", "description", "reference")


def _inputs_of(entry: JournalEntry) -> list[LineInput]:
    return [
        LineInput(
            account=line.account,
            side=line.side,
            amount=line.amount,
            currency=line.currency,
            description=line.description,
        )
        for line in entry.lines.select_related("account").order_by("line_no")
    ]


@transaction.atomic
def journal_entry_create(
    *,
    entry_date: date,
    description: str,
    lines: Sequence[Mapping[str, Any]],
    created_by,
    reference: str = "",
    source: str = EntrySource.MANUAL,
) -> JournalEntry:
    """Create a draft. Static rules are checked now, so a draft is always a postable shape."""
    inputs = line_inputs(lines)
    period = rules.check_entry(entry_date=entry_date, lines=inputs)
    entry = JournalEntry.objects.create(
        entry_date=entry_date,
        period=period,
        description=description,
        reference=reference,
        source=source,
        created_by=created_by,
    )
    _write_lines(entry, inputs)
    audit_record(
        action="journal_entry.created",
        obj=entry,
        actor=created_by,
        metadata=_entry_meta(entry, inputs),
    )
    return entry


@transaction.atomic
def journal_entry_update(
    *,
    entry: JournalEntry,
    actor,
    entry_date: date | None = None,
    description: str | None = None,
    reference: str | None = None,
    lines: Sequence[Mapping[str, Any]] | None = None,
) -> JournalEntry:
    """Change a draft; `lines`, when given, replace all lines."""
    entry = JournalEntry.objects.select_for_update().get(pk=entry.pk)
    rules.check_status(entry, EntryStatus.DRAFT)
    rules.check_owner(entry, actor)
    new_date = entry_date or entry.entry_date
    old_inputs = _inputs_of(entry)
    inputs = line_inputs(lines) if lines is not None else old_inputs
    before = {**snapshot(entry, ENTRY_AUDITED), "lines": _line_rows(old_inputs)}
    entry.period = rules.check_entry(entry_date=new_date, lines=inputs)
    entry.entry_date = new_date
    if description is not None:
        entry.description = description
    if reference is not None:
        entry.reference = reference
    entry.save(update_fields=["entry_date", "period", "description", "reference"])
    if lines is not None:
        entry.lines.all().delete()
        _write_lines(entry, inputs)
    changes = diff(before, {**snapshot(entry, ENTRY_AUDITED), "lines": _line_rows(inputs)})
    if changes:
        audit_record(
            action="journal_entry.updated",
            obj=entry,
            actor=actor,
            changes=changes,
            metadata=_lines_summary(inputs),
        )
    return entry


@transaction.atomic
def journal_entry_delete(*, entry: JournalEntry, actor) -> None:
    entry = JournalEntry.objects.select_for_update().get(pk=entry.pk)
    rules.check_status(entry, EntryStatus.DRAFT)
    rules.check_owner(entry, actor)
    audit_record(
        action="journal_entry.deleted",
        obj=entry,
        actor=actor,
        metadata=_entry_meta(entry, _inputs_of(entry)),
    )
    entry.delete()


@transaction.atomic
def journal_entry_submit(*, entry: JournalEntry, actor) -> JournalEntry:
    entry = JournalEntry.objects.select_for_update().get(pk=entry.pk)
    rules.check_status(entry, EntryStatus.DRAFT)
    rules.check_owner(entry, actor)
    inputs = _inputs_of(entry)
    rules.check_entry(entry_date=entry.entry_date, lines=inputs)
    entry.status = EntryStatus.PENDING_APPROVAL
    entry.submitted_by = actor
    entry.submitted_at = timezone.now()
    entry.save(update_fields=["status", "submitted_by", "submitted_at"])
    audit_record(
        action="journal_entry.submitted",
        obj=entry,
        actor=actor,
        changes={"status": [EntryStatus.DRAFT, entry.status]},
        metadata=_entry_meta(entry, inputs),
    )
    return entry


@transaction.atomic
def journal_entry_reject(*, entry: JournalEntry, actor) -> JournalEntry:
    """Send a pending entry back to its author as a draft."""
    entry = JournalEntry.objects.select_for_update().get(pk=entry.pk)
    rules.check_status(entry, EntryStatus.PENDING_APPROVAL)
    audit_record(
        action="journal_entry.rejected",
        obj=entry,
        actor=actor,
        changes={"status": [entry.status, EntryStatus.DRAFT]},
        metadata={"created_by": entry.created_by_id, "submitted_by": entry.submitted_by_id},
    )
    entry.status = EntryStatus.DRAFT
    entry.submitted_by = None
    entry.submitted_at = None
    entry.save(update_fields=["status", "submitted_by", "submitted_at"])
    return entry


def _user(pk: int):
    return get_user_model().objects.get(pk=pk)


def _locked_sequence(fiscal_year: int) -> EntrySequence:
    try:
        return EntrySequence.objects.select_for_update().get(pk=fiscal_year)
    except EntrySequence.DoesNotExist:
        EntrySequence.objects.get_or_create(fiscal_year=fiscal_year)
        return EntrySequence.objects.select_for_update().get(pk=fiscal_year)


def _post(
    entry_id: int,
    actor,
    *,
    expected: str,
    approved: bool,
    created: tuple[JournalEntry, list[LineInput]] | None = None,
) -> JournalEntry:
    """Post inside the caller's transaction: validate, number, update balances.

    `created` is (entry, inputs) from a caller that wrote the draft in this same transaction:
    nobody else can see that row yet, so it needs neither a re-read nor a lock.
    """
    period_id = (
        created[0].period_id
        if created
        else JournalEntry.objects.filter(pk=entry_id).values_list("period_id", flat=True).get()
    )
    period = FiscalPeriod.objects.select_for_update().get(pk=period_id)
    sequence = _locked_sequence(period.fiscal_year)
    if created:
        entry, inputs = created
    else:
        entry = JournalEntry.objects.select_for_update().get(pk=entry_id)
        inputs = _inputs_of(entry)
    rules.check_status(entry, expected)
    if approved:
        rules.check_approver(entry, actor)
    # Judged again under the period lock: accounts or the period may have changed since the
    # draft was written, and a concurrent close waits for this lock.
    raise_if(rules.validate_date(entry.entry_date, period) + rules.validate_lines(inputs))
    if not approved:
        rules.check_direct_post(source=entry.source, lines=inputs)

    deltas: dict[int, list[Decimal]] = {}
    for line in inputs:
        assert line.account is not None
        d = deltas.setdefault(line.account.pk, [Decimal(0), Decimal(0)])
        d[0 if line.side == Side.DEBIT else 1] += line.amount
    balances = list(
        AccountBalance.objects.select_for_update()
        .filter(account_id__in=deltas)
        .order_by("pk")
        .select_related("account")
    )
    projected = []
    for bal in balances:
        debit, credit = deltas[bal.account_id]
        bal.debit_total += debit
        bal.credit_total += credit
        projected.append((bal.account, bal.balance))
    raise_if(
        rules.validate_projected_balances(projected)
        + rules.validate_projected_totals(
            (bal.account, bal.debit_total, bal.credit_total) for bal in balances
        )
    )
    now = timezone.now()
    for bal in balances:  # rows are locked: writing the computed totals loses nothing
        AccountBalance.objects.filter(pk=bal.pk).update(
            debit_total=bal.debit_total, credit_total=bal.credit_total, updated_at=now
        )
    _recheck_on_commit(list(deltas))

    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    entry.fiscal_year = period.fiscal_year
    entry.number = sequence.last_number
    entry.status = EntryStatus.POSTED
    entry.posted_by = actor
    entry.posted_at = now
    fields = ["fiscal_year", "number", "status", "posted_by", "posted_at"]
    if approved:
        entry.approved_by = actor
        entry.approved_at = now
        fields += ["approved_by", "approved_at"]
    entry.save(update_fields=fields)
    if approved:
        audit_record(
            action="journal_entry.approved",
            obj=entry,
            actor=actor,
            metadata={"created_by": entry.created_by_id, "submitted_by": entry.submitted_by_id},
        )
    audit_record(
        action="journal_entry.posted",
        obj=entry,
        actor=actor,
        changes={"status": [expected, entry.status], "number": [None, entry.display_number]},
        metadata={
            **_entry_meta(entry, inputs),
            "number": entry.display_number,
            "fiscal_year": entry.fiscal_year,
            "approved": approved,
            "reversal_of": entry.reversal_of_id,
        },
    )
    return entry


# Real-time re-check of the balance cache -------------------------------------


BALANCE_CACHE_CHECK = "finance.balance_cache"  # the check whose alert the re-check raises


def _recheck_on_commit(account_ids: list[int]) -> None:
    """Re-check the touched accounts once the posting commits (never if it rolls back), where
    FINANCE_REALTIME_RECHECK says: "sync" in this process, "async" in a worker, "off" not."""
    mode = settings.FINANCE_REALTIME_RECHECK
    if mode != "off":
        transaction.on_commit(partial(_recheck_after_commit, sorted(account_ids), mode))


def _recheck_after_commit(account_ids: list[int], mode: str) -> None:
    # The posting has committed: nothing that goes wrong here may reach its caller, who would
    # take the posting for failed and retry it. Logged, so the error log and its alerts see it.
    try:
        if mode == "async":
            from django_q.tasks import async_task

            async_task("finance.tasks.recheck_accounts", account_ids)
        else:
            account_balances_recheck(account_ids=account_ids)
    except Exception:
        checks_logger.exception("Real-time balance re-check of accounts %s failed", account_ids)


def account_balances_recheck(*, account_ids: Collection[int]) -> list[selectors.BalanceMismatch]:
    """Compare the accounts' cached balances with their posted lines and, on a mismatch, raise
    the critical alert checks/finance.balance_cache at once.

    Incremental (`selectors.balance_recheck`): from each account's checkpoint per fiscal year,
    only the lines posted since are read, cache and lines in one statement, so a posting
    committing meanwhile cannot produce a false mismatch; a mismatch is confirmed against every
    line before it pages. Checkpoints move forward afterwards (they total lines, not the cache).
    Never resolves the alert: it sees only these accounts, and only a full run of the check
    may say the books are clean. Safe to run twice: the same firing alert counts one more
    occurrence, and a checkpoint only ever moves forward.
    """
    from finance.checks import balance_finding

    recheck = selectors.balance_recheck(account_ids=account_ids)
    mismatches = recheck.mismatches
    wrong: list[int] = []
    if mismatches:
        # Confirmed against every line before anyone is paged: a checkpoint can be wrong when
        # an old line was changed behind the guards and the cache then set to match it (the
        # runbook's fix). Such an account's checkpoints are dropped, and rebuilt next time.
        confirmed = {
            m.account_id: m
            for m in selectors.balance_mismatches(account_ids=[m.account_id for m in mismatches])
        }
        wrong = [m.account_id for m in mismatches if m.account_id not in confirmed]
        mismatches = [confirmed[m.account_id] for m in mismatches if m.account_id in confirmed]
    if mismatches:  # an explanation given to the check covers the same difference here too
        prints = {
            m.account_id: balance_finding(m).fingerprint(BALANCE_CACHE_CHECK) for m in mismatches
        }
        known = integrity.explanations_in_force(
            check_name=BALANCE_CACHE_CHECK, fingerprints=list(prints.values())
        )
        mismatches = [m for m in mismatches if prints[m.account_id] not in known]
    if mismatches:
        codes = ", ".join(m.code for m in mismatches[:10])
        alerting.raise_alert(
            source="checks",
            key=BALANCE_CACHE_CHECK,
            severity="critical",
            title=f"Cached balance differs from the posted lines of {len(mismatches)} "
            f"account(s): {codes}",
            details={
                "check": BALANCE_CACHE_CHECK,
                "realtime": True,
                "accounts": [m.as_details() for m in mismatches],
                "runbook": f"checks/{BALANCE_CACHE_CHECK}",
            },
        )
    # After the alert: a failure to move checkpoints must never swallow it.
    if wrong:
        BalanceCheckpoint.objects.filter(account_id__in=wrong).delete()
    _checkpoints_advance([v for v in recheck.verified if v.account_id not in wrong])
    return mismatches


def _checkpoints_advance(verified: Sequence[selectors.YearTotals]) -> None:
    """Move each (account, year) checkpoint forward to what the re-check verified; a concurrent
    re-check that got further first keeps its own (conditional update)."""
    now = timezone.now()
    for v in verified:
        values = {
            "through_number": v.through_number,
            "debit_total": v.debit,
            "credit_total": v.credit,
            "verified_at": now,
        }
        mine = BalanceCheckpoint.objects.filter(account_id=v.account_id, fiscal_year=v.fiscal_year)
        if mine.filter(through_number__lt=v.through_number).update(**values):
            continue
        try:  # none yet, or one already further on (then the insert is refused)
            with transaction.atomic():
                BalanceCheckpoint.objects.create(
                    account_id=v.account_id, fiscal_year=v.fiscal_year, **values
                )
        except IntegrityError:
            pass  # it exists and is as far or further on


def journal_entry_approve(*, entry: JournalEntry, actor) -> JournalEntry:
    """Approve a pending entry and post it (maker-checker: never the creator or submitter).

    Runs as the operation finance.journal_entry_approve: retried on transient faults, kept
    as a dead letter when it cannot finish.
    """
    return run_operation(
        "finance.journal_entry_approve", payload={"entry_id": entry.pk, "actor_id": actor.pk}
    )


def journal_entry_post(*, entry: JournalEntry, actor) -> JournalEntry:
    """Post a draft that needs no approval (below threshold, or a system entry)."""
    return run_operation(
        "finance.journal_entry_post", payload={"entry_id": entry.pk, "actor_id": actor.pk}
    )


def journal_entry_record(
    *,
    entry_date: date,
    description: str,
    lines: Sequence[Mapping[str, Any]],
    actor,
    reference: str = "",
    source: str = EntrySource.SYSTEM,
    idempotency_key: str | None = None,
) -> JournalEntry:
    """Create and post in one operation: for system postings that need no approval."""
    payload = {
        "entry_date": entry_date.isoformat(),
        "description": description,
        "reference": reference,
        "source": source,
        "actor_id": actor.pk,
        "lines": [
            {
                "account": ln["account"].pk
                if isinstance(ln["account"], Account)
                else ln["account"],
                "side": ln["side"],
                "amount": str(ln["amount"]),
                "currency": ln.get("currency") or "",
                "description": ln.get("description", ""),
            }
            for ln in lines
        ],
    }
    return run_operation(
        "finance.journal_entry_record", payload=payload, idempotency_key=idempotency_key
    )


def _record_draft(ctx: OperationContext) -> JournalEntry:
    """Step 1 of finance.journal_entry_record: the draft and its lines."""
    p = ctx.payload
    lines = [{**ln, "amount": Decimal(ln["amount"])} for ln in p["lines"]]
    inputs = line_inputs(lines)
    entry_date = date.fromisoformat(p["entry_date"])
    period = rules.check_entry(entry_date=entry_date, lines=inputs)
    actor = _user(p["actor_id"])
    entry = JournalEntry.objects.create(
        entry_date=entry_date,
        period=period,
        description=p["description"],
        reference=p["reference"],
        source=p["source"],
        created_by=actor,
    )
    _write_lines(entry, inputs)
    audit_record(
        action="journal_entry.created", obj=entry, actor=actor, metadata=_entry_meta(entry, inputs)
    )
    ctx.results["inputs"] = inputs
    ctx.results["actor"] = actor
    return entry


def _record_post(ctx: OperationContext) -> JournalEntry:
    """Step 2 of finance.journal_entry_record: number it and move the balances."""
    entry = ctx.results["_record_draft"]
    return _post(
        entry.pk,
        ctx.results["actor"],
        expected=EntryStatus.DRAFT,
        approved=False,
        created=(entry, ctx.results["inputs"]),
    )


def journal_entry_reverse(
    *,
    entry: JournalEntry,
    actor,
    entry_date: date | None = None,
    description: str | None = None,
    idempotency_key: str | None = None,
) -> JournalEntry:
    """Post a mirror entry and mark the original reversed. Returns the reversal.

    `idempotency_key` (an API client's, scoped by the caller) also keys the operation, so a
    client retry and a dead-letter retry of the same request can never both run.
    """
    return run_operation(
        "finance.journal_entry_reverse",
        payload={
            "entry_id": entry.pk,
            "actor_id": actor.pk,
            "entry_date": (entry_date or timezone.localdate()).isoformat(),
            "description": description or "",
        },
        idempotency_key=idempotency_key,
    )


def _approve(ctx: OperationContext) -> JournalEntry:
    p = ctx.payload
    return _post(
        p["entry_id"], _user(p["actor_id"]), expected=EntryStatus.PENDING_APPROVAL, approved=True
    )


def _direct_post(ctx: OperationContext) -> JournalEntry:
    p = ctx.payload
    return _post(p["entry_id"], _user(p["actor_id"]), expected=EntryStatus.DRAFT, approved=False)


def _reverse(ctx: OperationContext) -> JournalEntry:
    """Locks in the documented order: the reversal's period and the year's sequence first,
    then the original entry."""
    p = ctx.payload
    entry = JournalEntry(pk=p["entry_id"])
    actor = _user(p["actor_id"])
    description = p["description"] or None
    reversal_date = date.fromisoformat(p["entry_date"])
    period = rules.period_for(reversal_date)
    if period is None:
        raise_if(rules.validate_date(reversal_date, None))
    FiscalPeriod.objects.select_for_update().get(pk=period.pk)
    _locked_sequence(period.fiscal_year)
    original = JournalEntry.objects.select_for_update().get(pk=entry.pk)
    if original.status == EntryStatus.REVERSED:
        reversal = JournalEntry.objects.get(reversal_of=original)
        raise_if([violation("entry.already_reversed", reversal=reversal.display_number)])
    rules.check_status(original, EntryStatus.POSTED)
    mirrored = [
        {
            "account": line.account,
            "side": Side.CREDIT if line.side == Side.DEBIT else Side.DEBIT,
            "amount": line.amount,
            "currency": line.currency,
            "description": line.description,
        }
        for line in original.lines.select_related("account").order_by("line_no")
    ]
    inputs = line_inputs(mirrored)
    rules.check_entry(entry_date=reversal_date, lines=inputs)
    reversal = JournalEntry.objects.create(
        entry_date=reversal_date,
        period=period,
        description=description or f"Reversal of {original.display_number}",
        reference=original.display_number,
        source=EntrySource.REVERSAL,
        reversal_of=original,
        created_by=actor,
    )
    _write_lines(reversal, inputs)
    reversal = _post(
        reversal.pk, actor, expected=EntryStatus.DRAFT, approved=False, created=(reversal, inputs)
    )
    original.status = EntryStatus.REVERSED
    original.save(update_fields=["status"])
    audit_record(
        action="journal_entry.reversed",
        obj=original,
        actor=actor,
        changes={"status": [EntryStatus.POSTED, original.status]},
        metadata={
            "reversal_id": reversal.pk,
            "reversal_number": reversal.display_number,
            "reversal_date": reversal.entry_date,
        },
    )
    return reversal


register_operation("finance.journal_entry_approve", _approve)
register_operation("finance.journal_entry_post", _direct_post)
register_operation("finance.journal_entry_record", _record_draft, _record_post)
register_operation("finance.journal_entry_reverse", _reverse)
