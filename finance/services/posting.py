"""Posting: number an entry and move its accounts' balances, inside the caller's transaction.

Lock order, everywhere: fiscal period -> entry sequence -> journal entry -> account balances
(by account id). Every posting takes the fiscal year's sequence row first, so postings in one
year are serialised there and numbers stay gapless; balance rows are still locked in id order
so that code paths which skip the sequence (none today) cannot deadlock with postings.

Validate, then do: `lock_*` take the locks, `check_*` raise the broken rules, `do_*` write
(rows, numbers, the trail, the re-check after commit). `post_entry` and the reversal run them in
that order for the operations in operations.py, which own the transaction. After a posting
commits, the touched accounts' cached balances are re-checked against their lines
(finance/recheck.py, see FINANCE_REALTIME_RECHECK).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.contrib.auth.models import User
from django.utils import timezone

from audit.services import audit_record
from finance import rules
from finance.models import (
    AccountBalance,
    EntrySequence,
    EntrySource,
    EntryStatus,
    FiscalPeriod,
    JournalEntry,
    Side,
)
from finance.recheck import recheck_on_commit
from finance.rules import LineInput, raise_if, violation
from finance.services.lines import entry_meta, inputs_of, line_inputs, write_lines

__all__ = [
    "Draft",
    "Posting",
    "check_balances",
    "check_posting",
    "check_reversible",
    "do_mark_reversed",
    "do_post",
    "do_reversal_draft",
    "lock_balances",
    "lock_posting",
    "lock_reversal",
    "mirrored_lines",
    "post_entry",
]


@dataclass(frozen=True)
class Draft:
    """A draft written earlier in the posting's own transaction, with its lines: nobody else
    can see that row yet, so it needs neither a re-read nor a lock."""

    entry: JournalEntry
    inputs: list[LineInput]


@dataclass(frozen=True)
class Posting:
    """An entry locked for posting, with its lines, its period and the year's sequence row."""

    entry: JournalEntry
    inputs: list[LineInput]
    period: FiscalPeriod
    sequence: EntrySequence


def locked_sequence(fiscal_year: int) -> EntrySequence:
    try:
        return EntrySequence.objects.select_for_update().get(pk=fiscal_year)
    except EntrySequence.DoesNotExist:
        EntrySequence.objects.get_or_create(fiscal_year=fiscal_year)
        return EntrySequence.objects.select_for_update().get(pk=fiscal_year)


def lock_posting(target: int | Draft) -> Posting:
    """Lock the entry (an id, or a `Draft` of this transaction) after its period and sequence."""
    if isinstance(target, Draft):
        period_id = target.entry.period_id
    else:
        entry_rows = JournalEntry.objects.filter(pk=target)
        period_id = entry_rows.values_list("period_id", flat=True).get()
    period = FiscalPeriod.objects.select_for_update().get(pk=period_id)
    sequence = locked_sequence(period.fiscal_year)
    if isinstance(target, Draft):
        entry, inputs = target.entry, target.inputs
    else:
        entry = JournalEntry.objects.select_for_update().get(pk=target)
        inputs = inputs_of(entry)
    return Posting(entry=entry, inputs=inputs, period=period, sequence=sequence)


def _expected_status(approved: bool) -> str:
    """An approval posts a pending entry; a direct posting, a draft."""
    return EntryStatus.PENDING_APPROVAL if approved else EntryStatus.DRAFT


def check_posting(posting: Posting, actor: User, *, approved: bool) -> None:
    """Judge the locked entry: its state, who approves it, its date and lines, the need for an
    approval. Raises RuleViolation."""
    entry, inputs = posting.entry, posting.inputs
    rules.check_status(entry, _expected_status(approved))
    if approved:
        rules.check_approver(entry, actor)
    # Judged again under the period lock: accounts or the period may have changed since the
    # draft was written, and a concurrent close waits for this lock.
    raise_if(rules.validate_date(entry.entry_date, posting.period) + rules.validate_lines(inputs))
    if not approved:
        rules.check_direct_post(source=entry.source, lines=inputs)


def lock_balances(inputs: Sequence[LineInput]) -> list[AccountBalance]:
    """The touched accounts' balance rows, locked in id order, holding their totals after the
    posting (in memory only: `do_post` writes them)."""
    deltas: dict[int, list[Decimal]] = {}
    for line in inputs:
        assert line.account is not None  # judged by check_posting
        d = deltas.setdefault(line.account.pk, [Decimal(0), Decimal(0)])
        d[0 if line.side == Side.DEBIT else 1] += line.amount
    balances = list(
        AccountBalance.objects.select_for_update()
        .filter(account_id__in=deltas)
        .order_by("pk")
        .select_related("account")
    )
    for bal in balances:
        debit, credit = deltas[bal.account_id]
        bal.debit_total += debit
        bal.credit_total += credit
    return balances


def check_balances(balances: Sequence[AccountBalance]) -> None:
    """The totals after the posting: no forbidden negative balance, nothing past the limit."""
    raise_if(
        rules.validate_projected_balances([(bal.account, bal.balance) for bal in balances])
        + rules.validate_projected_totals(
            (bal.account, bal.debit_total, bal.credit_total) for bal in balances
        )
    )


def do_post(
    posting: Posting, balances: Sequence[AccountBalance], actor: User, *, approved: bool
) -> JournalEntry:
    """Write the judged posting: balances, the entry's number and state, the trail."""
    now = timezone.now()
    for bal in balances:  # rows are locked: writing the computed totals loses nothing
        AccountBalance.objects.filter(pk=bal.pk).update(
            debit_total=bal.debit_total, credit_total=bal.credit_total, updated_at=now
        )
    recheck_on_commit({line.account.pk for line in posting.inputs if line.account is not None})
    entry = _do_number(posting, actor, now, approved=approved)
    _do_audit_posting(posting, actor, approved=approved)
    return entry


def _do_number(posting: Posting, actor: User, now: datetime, *, approved: bool) -> JournalEntry:
    sequence, entry = posting.sequence, posting.entry
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    entry.fiscal_year = posting.period.fiscal_year
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
    return entry


def _do_audit_posting(posting: Posting, actor: User, *, approved: bool) -> None:
    entry = posting.entry
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
        changes={
            "status": [_expected_status(approved), entry.status],
            "number": [None, entry.display_number],
        },
        metadata={
            **entry_meta(entry, posting.inputs),
            "number": entry.display_number,
            "fiscal_year": entry.fiscal_year,
            "approved": approved,
            "reversal_of": entry.reversal_of_id,
        },
    )


def post_entry(target: int | Draft, actor: User, *, approved: bool) -> JournalEntry:
    """Post inside the caller's transaction: lock, judge, number, move the balances.

    `approved`: an approval of a pending entry (maker-checker) rather than the direct posting
    of a draft that needs none.
    """
    posting = lock_posting(target)
    check_posting(posting, actor, approved=approved)
    balances = lock_balances(posting.inputs)
    check_balances(balances)
    return do_post(posting, balances, actor, approved=approved)


# Reversals ------------------------------------------------------------------


def _period_of(entry_date: date) -> FiscalPeriod:
    period = rules.period_for(entry_date)
    if period is None:
        raise_if(rules.validate_date(entry_date, None))
    assert period is not None  # validate_date reports the missing period
    return period


def lock_reversal(entry_id: int, reversal_date: date) -> tuple[FiscalPeriod, JournalEntry]:
    """Locks in the documented order: the reversal's period and the year's sequence first,
    then the original entry. Returns the period and the locked original."""
    period = _period_of(reversal_date)
    FiscalPeriod.objects.select_for_update().get(pk=period.pk)
    locked_sequence(period.fiscal_year)
    return period, JournalEntry.objects.select_for_update().get(pk=entry_id)


def check_reversible(original: JournalEntry) -> None:
    if original.status == EntryStatus.REVERSED:
        reversal = JournalEntry.objects.get(reversal_of=original)
        raise_if([violation("entry.already_reversed", reversal=reversal.display_number)])
    rules.check_status(original, EntryStatus.POSTED)


def mirrored_lines(original: JournalEntry) -> list[LineInput]:
    """The original's lines with debit and credit swapped, accounts read afresh."""
    return line_inputs(
        [
            {
                "account": line.account,
                "side": Side.CREDIT if line.side == Side.DEBIT else Side.DEBIT,
                "amount": line.amount,
                "currency": line.currency,
                "description": line.description,
            }
            for line in original.lines.select_related("account").order_by("line_no")
        ]
    )


def do_reversal_draft(
    original: JournalEntry,
    *,
    period: FiscalPeriod,
    entry_date: date,
    description: str | None,
    inputs: list[LineInput],
    actor: User,
) -> Draft:
    """The reversal as a draft of this transaction (posted next; the posting is its trail)."""
    reversal = JournalEntry.objects.create(
        entry_date=entry_date,
        period=period,
        description=description or f"Reversal of {original.display_number}",
        reference=original.display_number,
        source=EntrySource.REVERSAL,
        reversal_of=original,
        created_by=actor,
    )
    write_lines(reversal, inputs)
    return Draft(entry=reversal, inputs=inputs)


def do_mark_reversed(original: JournalEntry, reversal: JournalEntry, actor: User) -> None:
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
