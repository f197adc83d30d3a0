"""The ledger's postings as operations of the transaction manager (integrity/transactions.py).

Approve, post, record and reverse each run as one `Operation`: all-or-nothing, retried on
transient faults, kept as a dead letter when they cannot finish. Their names and payloads are
stored in operation records and dead letters, so both stay as they are: a dead letter written
by an earlier release must still run. FinanceConfig.ready registers `OPERATIONS`, so that a dead
letter can be retried, and its payload's ids checked, in any process.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Self, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.utils import timezone

from finance import rules
from finance.exceptions import RuleViolation
from finance.models import Account, EntrySource, JournalEntry
from finance.services.bulk import EntryInput, EntryResult, entries_post
from finance.services.posting import (
    check_reversible,
    do_mark_reversed,
    do_reversal_draft,
    lock_reversal,
    mirrored_lines,
    post_entry,
)
from integrity.transactions import Operation, OperationContext, run_operation

__all__ = [
    "JOURNAL_ENTRIES_RECORD_BATCH",
    "JOURNAL_ENTRY_APPROVE",
    "JOURNAL_ENTRY_POST",
    "JOURNAL_ENTRY_RECORD",
    "JOURNAL_ENTRY_REVERSE",
    "OPERATIONS",
    "journal_entries_record_batch",
    "journal_entry_approve",
    "journal_entry_post",
    "journal_entry_record",
    "journal_entry_reverse",
]


def _user(pk: int) -> User:
    return get_user_model().objects.get(pk=pk)


def _run(operation: Operation, payload: dict[str, Any], key: str | None = None) -> JournalEntry:
    # Every step chain below ends in the posted entry (also when a stored result is returned).
    return cast(JournalEntry, run_operation(operation, payload=payload, idempotency_key=key))


# Payloads: the shapes stored in dead letters ---------------------------------------------


@dataclass(frozen=True)
class EntryAction:
    """Approve or post one entry: {"entry_id", "actor_id"}."""

    entry_id: int
    actor_id: int

    def payload(self) -> dict[str, Any]:
        return {"entry_id": self.entry_id, "actor_id": self.actor_id}

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> Self:
        return cls(entry_id=payload["entry_id"], actor_id=payload["actor_id"])


@dataclass(frozen=True)
class Reversal:
    """Reverse one entry: {"entry_id", "actor_id", "entry_date" (ISO), "description"}."""

    entry_id: int
    actor_id: int
    entry_date: date
    description: str

    def payload(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "actor_id": self.actor_id,
            "entry_date": self.entry_date.isoformat(),
            "description": self.description,
        }

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> Self:
        return cls(
            entry_id=payload["entry_id"],
            actor_id=payload["actor_id"],
            entry_date=date.fromisoformat(payload["entry_date"]),
            description=payload["description"],
        )


@dataclass(frozen=True)
class Record:
    """Create and post an entry: its fields, the actor, and the lines with amounts as strings
    and accounts as ids."""

    entry_date: date
    description: str
    reference: str
    source: str
    actor_id: int
    lines: list[dict[str, Any]]

    def payload(self) -> dict[str, Any]:
        return {
            "entry_date": self.entry_date.isoformat(),
            "description": self.description,
            "reference": self.reference,
            "source": self.source,
            "actor_id": self.actor_id,
            "lines": self.lines,
        }

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> Self:
        return cls(
            entry_date=date.fromisoformat(payload["entry_date"]),
            description=payload["description"],
            reference=payload["reference"],
            source=payload["source"],
            actor_id=payload["actor_id"],
            lines=payload["lines"],
        )

    def entry_input(self) -> EntryInput:
        return EntryInput(
            entry_date=self.entry_date,
            description=self.description,
            reference=self.reference,
            source=self.source,
            lines=[{**ln, "amount": Decimal(ln["amount"])} for ln in self.lines],
        )

    @staticmethod
    def json_lines(lines: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [
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
        ]


@dataclass(frozen=True)
class Batch:
    """Record and post many entries: the actor and the entries, each as a `Record`'s payload
    without its actor."""

    actor_id: int
    entries: list[dict[str, Any]]

    def payload(self) -> dict[str, Any]:
        return {"actor_id": self.actor_id, "entries": self.entries}

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> Self:
        return cls(actor_id=payload["actor_id"], entries=payload["entries"])

    def entry_inputs(self) -> list[EntryInput]:
        return [
            Record.of({**entry, "actor_id": self.actor_id}).entry_input() for entry in self.entries
        ]


# Steps ------------------------------------------------------------------------------------


def _approve(ctx: OperationContext) -> JournalEntry:
    action = EntryAction.of(ctx.payload)
    return post_entry(action.entry_id, _user(action.actor_id), approved=True)


def _direct_post(ctx: OperationContext) -> JournalEntry:
    action = EntryAction.of(ctx.payload)
    return post_entry(action.entry_id, _user(action.actor_id), approved=False)


def _record(ctx: OperationContext) -> JournalEntry:
    """finance.journal_entry_record: the entry recorded and posted (bulk.py: set-based where
    the database allows, else draft then post)."""
    record = Record.of(ctx.payload)
    [result] = entries_post(entries=[record.entry_input()], actor_id=record.actor_id)
    if result.entry is None:
        raise RuleViolation(result.violations)
    return result.entry


def _record_batch(ctx: OperationContext) -> list[dict[str, Any]]:
    """finance.journal_entries_record_batch: each entry posted or refused on its own."""
    batch = Batch.of(ctx.payload)
    results = entries_post(entries=batch.entry_inputs(), actor_id=batch.actor_id)
    return [_batch_result(result) for result in results]


def _batch_result(result: EntryResult) -> dict[str, Any]:
    """Plain JSON (stored as the operation's result and replayed as it is): posted with the
    entry's id and number, or refused with the error the single posting would have raised."""
    if result.entry is None:
        refusal = RuleViolation(result.violations)
        return {
            "index": result.index,
            "status": "refused",
            "error": {"code": refusal.code, "message": refusal.message, "fields": refusal.fields},
        }
    return {
        "index": result.index,
        "status": "posted",
        "id": result.entry.pk,
        "number": result.entry.display_number,
    }


def _reverse(ctx: OperationContext) -> JournalEntry:
    """The mirror entry, posted, and the original marked reversed."""
    request = Reversal.of(ctx.payload)
    actor = _user(request.actor_id)
    period, original = lock_reversal(request.entry_id, request.entry_date)
    check_reversible(original)
    inputs = mirrored_lines(original)
    rules.check_entry(entry_date=request.entry_date, lines=inputs)
    draft = do_reversal_draft(
        original,
        period=period,
        entry_date=request.entry_date,
        description=request.description or None,
        inputs=inputs,
        actor=actor,
    )
    reversal = post_entry(draft, actor, approved=False)
    do_mark_reversed(original, reversal, actor)
    return reversal


# The operations, declared once ------------------------------------------------------------

_ENTRY = {"entry_id": "finance.JournalEntry"}
_ACTOR = {"actor_id": settings.AUTH_USER_MODEL}

JOURNAL_ENTRY_APPROVE = Operation(
    "finance.journal_entry_approve", steps=(_approve,), references={**_ENTRY, **_ACTOR}
)
JOURNAL_ENTRY_POST = Operation(
    "finance.journal_entry_post", steps=(_direct_post,), references={**_ENTRY, **_ACTOR}
)
# Recording is the hot path: its key is claimed with the result, in one statement.
JOURNAL_ENTRY_RECORD = Operation(
    "finance.journal_entry_record", steps=(_record,), references=_ACTOR, claim_last=True
)
JOURNAL_ENTRIES_RECORD_BATCH = Operation(
    "finance.journal_entries_record_batch",
    steps=(_record_batch,),
    references=_ACTOR,
    claim_last=True,
)
JOURNAL_ENTRY_REVERSE = Operation(
    "finance.journal_entry_reverse", steps=(_reverse,), references={**_ENTRY, **_ACTOR}
)
OPERATIONS = (
    JOURNAL_ENTRY_APPROVE,
    JOURNAL_ENTRY_POST,
    JOURNAL_ENTRY_RECORD,
    JOURNAL_ENTRY_REVERSE,
    JOURNAL_ENTRIES_RECORD_BATCH,
)


# The services -----------------------------------------------------------------------------


def journal_entry_approve(*, entry: JournalEntry, actor: User) -> JournalEntry:
    """Approve a pending entry and post it (maker-checker: never the creator or submitter).

    Runs as the operation finance.journal_entry_approve: retried on transient faults, kept
    as a dead letter when it cannot finish.
    """
    return _run(JOURNAL_ENTRY_APPROVE, EntryAction(entry.pk, actor.pk).payload())


def journal_entry_post(*, entry: JournalEntry, actor: User) -> JournalEntry:
    """Post a draft that needs no approval (below threshold, or a system entry)."""
    return _run(JOURNAL_ENTRY_POST, EntryAction(entry.pk, actor.pk).payload())


def journal_entry_record(
    *,
    entry_date: date,
    description: str,
    lines: Sequence[Mapping[str, Any]],
    actor: User,
    reference: str = "",
    source: str = EntrySource.SYSTEM,
    idempotency_key: str | None = None,
) -> JournalEntry:
    """Create and post in one operation: for system postings that need no approval."""
    record = Record(
        entry_date=entry_date,
        description=description,
        reference=reference,
        source=source,
        actor_id=actor.pk,
        lines=Record.json_lines(lines),
    )
    return _run(JOURNAL_ENTRY_RECORD, record.payload(), idempotency_key)


def journal_entry_reverse(
    *,
    entry: JournalEntry,
    actor: User,
    entry_date: date | None = None,
    description: str | None = None,
    idempotency_key: str | None = None,
) -> JournalEntry:
    """Post a mirror entry and mark the original reversed. Returns the reversal.

    `idempotency_key` (an API client's, scoped by the caller) also keys the operation, so a
    client retry and a dead-letter retry of the same request can never both run.
    """
    request = Reversal(
        entry_id=entry.pk,
        actor_id=actor.pk,
        entry_date=entry_date or timezone.localdate(),
        description=description or "",
    )
    return _run(JOURNAL_ENTRY_REVERSE, request.payload(), idempotency_key)


# The most entries one batch takes: its locks are held for the whole batch.
BATCH_MAX_ENTRIES = 1000
BATCH_MAX_LINES = 10_000


def journal_entries_record_batch(
    *,
    entries: Sequence[Mapping[str, Any]],
    actor: User,
    idempotency_key: str | None = None,
) -> list[dict[str, Any]]:
    """Record and post many entries in one transaction; one result per entry, in order.

    Each entry is all-or-nothing and judged by the rules the single posting applies
    (`journal_entry_record`), on the balances the entries before it leave: a refused entry
    writes nothing and the others still post. The batch as a whole is one operation
    (finance.journal_entries_record_batch): `idempotency_key` returns the first run's results
    to a retry. `entries` are dicts with entry_date, description, reference, source and lines
    (as `journal_entry_record` takes them). At most BATCH_MAX_ENTRIES entries and
    BATCH_MAX_LINES lines (a ValueError beyond).
    """
    lines = sum(len(e["lines"]) for e in entries)
    if len(entries) > BATCH_MAX_ENTRIES or lines > BATCH_MAX_LINES:
        raise ValueError(
            f"a batch takes at most {BATCH_MAX_ENTRIES} entries and {BATCH_MAX_LINES} lines"
        )
    batch = Batch(
        actor_id=actor.pk,
        entries=[
            {
                "entry_date": e["entry_date"].isoformat(),
                "description": e["description"],
                "reference": e.get("reference", ""),
                "source": e.get("source", EntrySource.SYSTEM),
                "lines": Record.json_lines(e["lines"]),
            }
            for e in entries
        ],
    )
    results = run_operation(
        JOURNAL_ENTRIES_RECORD_BATCH, payload=batch.payload(), idempotency_key=idempotency_key
    )
    return cast(list[dict[str, Any]], results)
