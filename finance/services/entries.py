"""Journal entry drafts: create, change, delete, submit for approval, send back.

Posting them (numbers, balances) is posting.py's and operations.py's.
"""

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record, diff, snapshot
from finance import rules
from finance.models import EntrySource, EntryStatus, FiscalPeriod, JournalEntry
from finance.rules import LineInput
from finance.services.lines import (
    entry_meta,
    inputs_of,
    line_inputs,
    line_rows,
    lines_summary,
    write_lines,
)

__all__ = [
    "ENTRY_AUDITED",
    "do_draft_create",
    "journal_entry_create",
    "journal_entry_delete",
    "journal_entry_reject",
    "journal_entry_submit",
    "journal_entry_update",
]

ENTRY_AUDITED = ("entry_date", "period", "description", "reference")


@transaction.atomic
def journal_entry_create(
    *,
    entry_date: date,
    description: str,
    lines: Sequence[Mapping[str, Any]],
    created_by: User,
    reference: str = "",
    source: str = EntrySource.MANUAL,
) -> JournalEntry:
    """Create a draft. Static rules are checked now, so a draft is always a postable shape."""
    inputs = line_inputs(lines)
    period = rules.check_entry(entry_date=entry_date, lines=inputs)
    return do_draft_create(
        entry_date=entry_date,
        period=period,
        description=description,
        reference=reference,
        source=source,
        inputs=inputs,
        created_by=created_by,
    )


def do_draft_create(
    *,
    entry_date: date,
    period: FiscalPeriod,
    description: str,
    reference: str,
    source: str,
    inputs: Sequence[LineInput],
    created_by: User,
) -> JournalEntry:
    """Write a judged draft (`rules.check_entry`) and its lines, and record it; inside the
    caller's transaction."""
    entry = JournalEntry.objects.create(
        entry_date=entry_date,
        period=period,
        description=description,
        reference=reference,
        source=source,
        created_by=created_by,
    )
    write_lines(entry, inputs)
    audit_record(
        action="journal_entry.created",
        obj=entry,
        actor=created_by,
        metadata=entry_meta(entry, inputs),
    )
    return entry


@transaction.atomic
def journal_entry_update(
    *,
    entry: JournalEntry,
    actor: User,
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
    old_inputs = inputs_of(entry)
    inputs = line_inputs(lines) if lines is not None else old_inputs
    before = {**snapshot(entry, ENTRY_AUDITED), "lines": line_rows(old_inputs)}
    entry.period = rules.check_entry(entry_date=new_date, lines=inputs)
    entry.entry_date = new_date
    if description is not None:
        entry.description = description
    if reference is not None:
        entry.reference = reference
    entry.save(update_fields=["entry_date", "period", "description", "reference"])
    if lines is not None:
        entry.lines.all().delete()
        write_lines(entry, inputs)
    changes = diff(before, {**snapshot(entry, ENTRY_AUDITED), "lines": line_rows(inputs)})
    if changes:
        audit_record(
            action="journal_entry.updated",
            obj=entry,
            actor=actor,
            changes=changes,
            metadata=lines_summary(inputs),
        )
    return entry


@transaction.atomic
def journal_entry_delete(*, entry: JournalEntry, actor: User) -> None:
    entry = JournalEntry.objects.select_for_update().get(pk=entry.pk)
    rules.check_status(entry, EntryStatus.DRAFT)
    rules.check_owner(entry, actor)
    audit_record(
        action="journal_entry.deleted",
        obj=entry,
        actor=actor,
        metadata=entry_meta(entry, inputs_of(entry)),
    )
    entry.delete()


@transaction.atomic
def journal_entry_submit(*, entry: JournalEntry, actor: User) -> JournalEntry:
    entry = JournalEntry.objects.select_for_update().get(pk=entry.pk)
    rules.check_status(entry, EntryStatus.DRAFT)
    rules.check_owner(entry, actor)
    inputs = inputs_of(entry)
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
        metadata=entry_meta(entry, inputs),
    )
    return entry


@transaction.atomic
def journal_entry_reject(*, entry: JournalEntry, actor: User) -> JournalEntry:
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
