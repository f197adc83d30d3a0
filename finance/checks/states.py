"""Impossible states: ledger rows in a state the workflow cannot produce."""

from collections.abc import Iterator

from django.db.models import Exists, OuterRef, Q, QuerySet

from config.registry import CheckContext, Finding, register
from finance.checks import common
from finance.models import POSTED_STATES, EntryStatus, FiscalPeriod, JournalEntry, PeriodStatus

# 8. Impossible states ---------------------------------------------------------------------


@register("finance.impossible_states", tag="integrity", severity="error")
def impossible_states(ctx: CheckContext) -> Iterator[Finding]:
    """No ledger row is in a state the workflow cannot produce: posted without a number, reversed
    without a posted reversal, a reversal of an unreversed entry, a closed period without its
    closing time, an unposted entry with a number.

    Each state is reachable only by editing rows directly (or a constraint that was dropped);
    it breaks numbering, the reversal trail or the period-close audit.
    """
    entries = JournalEntry.objects.all()
    reversal = JournalEntry.objects.filter(reversal_of=OuterRef("pk"), status__in=POSTED_STATES)
    kinds: list[tuple[str, str, QuerySet, str]] = [
        (
            "posted_without_number",
            common.ENTRY,
            entries.filter(status__in=POSTED_STATES).filter(
                Q(number__isnull=True) | Q(fiscal_year__isnull=True) | Q(posted_at__isnull=True)
            ),
            "posted or reversed without a number, fiscal year or posting time",
        ),
        (
            "reversed_without_reversal",
            common.ENTRY,
            entries.filter(status=EntryStatus.REVERSED).filter(~Exists(reversal)),
            "marked reversed but no posted entry reverses them",
        ),
        (
            "reversal_of_unreversed",
            common.ENTRY,
            entries.filter(reversal_of__isnull=False).exclude(
                reversal_of__status=EntryStatus.REVERSED
            ),
            "reverse an entry that is not marked reversed",
        ),
        (
            "unposted_with_number",
            common.ENTRY,
            entries.filter(
                status__in=(EntryStatus.DRAFT, EntryStatus.PENDING_APPROVAL), number__isnull=False
            ),
            "draft or pending yet numbered",
        ),
        (
            "closed_without_closed_at",
            "finance.fiscalperiod",
            FiscalPeriod.objects.filter(status=PeriodStatus.CLOSED, closed_at__isnull=True),
            "closed without a closing time",
        ),
    ]
    for key, object_type, qs, what in kinds:
        count, sample = common.sample_of(qs, ctx.sample_size)
        if count:
            noun = "fiscal period" if object_type == "finance.fiscalperiod" else "journal entry"
            yield Finding(
                message=f"{count} {noun}(s) {what}",
                count=count,
                object_type=object_type,
                object_id=str(sample[0]) if count == 1 else "",
                key=key,
                sample=sample,
            )
