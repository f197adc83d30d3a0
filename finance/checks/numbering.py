"""Where and how entries are posted: inside open periods, numbered without gaps."""

from collections.abc import Iterator
from typing import Any

from django.db.models import F, Q

from config.registry import CheckContext, Finding, register
from finance.checks import common, ledger_pass
from finance.models import POSTED_STATES, EntrySequence, JournalEntry, PeriodStatus
from finance.sql import POSTED_SQL
from integrity.constraints import unique_enforced

# 4. Postings into closed periods ----------------------------------------------------------


@register("finance.closed_period_postings", tag="finance", severity="error")
def closed_period_postings(ctx: CheckContext) -> Iterator[Finding]:
    """No entry was posted into a closed period after it closed, and every posted entry lies in
    its period (dates and fiscal year).

    Closing locks the period and postings re-check it under that lock, so an entry posted after
    the close, or filed under a period that does not contain its date, was written or edited
    around the services; reports built per period would silently miss or double count it.
    """
    years = ledger_pass.entry_totals(ctx).values()
    if not any(y.after_close or y.outside_period or y.other_year for y in years):
        return  # the run's pass over the posted entries and their periods found none
    posted = JournalEntry.objects.filter(status__in=POSTED_STATES)
    kinds = {
        "posted_after_close": (
            posted.filter(period__status=PeriodStatus.CLOSED, posted_at__gt=F("period__closed_at")),
            "posted into a closed period after its close",
        ),
        "date_outside_period": (
            posted.filter(
                Q(entry_date__lt=F("period__start_date")) | Q(entry_date__gt=F("period__end_date"))
            ),
            "dated outside the period it is filed under",
        ),
        "fiscal_year_mismatch": (
            posted.filter(fiscal_year__isnull=False).exclude(fiscal_year=F("period__fiscal_year")),
            "numbered in another fiscal year than its period's",
        ),
    }
    for key, (qs, what) in kinds.items():
        count, sample = common.sample_of(qs, ctx.sample_size)
        if not count:
            continue
        examples = list(
            qs.filter(pk__in=sample)
            .order_by("pk")
            .values(
                "id",
                "entry_date",
                "posted_at",
                "fiscal_year",
                "number",
                "period__name",
                "period__start_date",
                "period__end_date",
                "period__fiscal_year",
                "period__closed_at",
            )
        )
        yield common.entries_finding(key, what, count, sample, examples)


# 5. Entry numbers -----------------------------------------------------------------------


def _gaps(year: int, top: int, lowest: int | None, size: int) -> list[tuple[int, int]]:
    """The first `size` runs of missing numbers in 1..top, as (first, last) pairs: the number
    after each posted number whose successor is not posted (an anti-join on the unique index)."""
    runs: list[tuple[int, int]] = []
    if lowest is None or lowest > 1:
        runs.append((1, top if lowest is None else lowest - 1))
    if lowest is None:
        return runs
    rows = common.rows(
        f"""SELECT DISTINCT e.number + 1,
                   (SELECT min(n.number) FROM finance_journalentry n
                     WHERE n.fiscal_year = e.fiscal_year AND n.number > e.number
                       AND n.status IN {POSTED_SQL}) - 1
              FROM finance_journalentry e
             WHERE e.fiscal_year = %s AND e.status IN {POSTED_SQL} AND e.number IS NOT NULL
               AND e.number >= 1 AND e.number < %s
               AND NOT EXISTS (SELECT 1 FROM finance_journalentry s
                                WHERE s.fiscal_year = e.fiscal_year AND s.number = e.number + 1
                                  AND s.status IN {POSTED_SQL})
             ORDER BY 1 LIMIT %s""",  # noqa: S608
        [year, top, size],
    )
    runs += [(first, last if last is not None else top) for first, last in rows]
    return runs


@register("finance.entry_number_gaps", tag="finance", severity="error")
def entry_number_gaps(ctx: CheckContext) -> Iterator[Finding]:
    """Posted entry numbers run 1..N without gaps or duplicates in each fiscal year, and N is the
    year's sequence (EntrySequence.last_number).

    Numbers are taken under the sequence row's lock in the posting's transaction, so they are
    gapless by construction; auditors rely on that to know nothing was removed. A gap means a
    posted entry was deleted or renumbered; a sequence behind the highest number makes the next
    posting collide, one ahead means a number was skipped.
    """
    if _numbers_clean(ctx):
        return
    for row in _years():
        _, last, posted, distinct, lowest, highest = row[:6]
        if posted == distinct == last and (posted == 0 or (lowest == 1 and highest == last)):
            continue
        yield _year_finding(ctx, row)


def _numbers_clean(ctx: CheckContext) -> bool:
    """The run's pass over the posted entries shows every year numbered 1..last once, as its
    sequence says: the test below, with the distinct numbers counted by the unique index on
    (fiscal_year, number) instead of a sort (without a valid index, never clean)."""
    if not unique_enforced(
        JournalEntry,
        ["fiscal_year", "number"],
        name="finance_entry_number_unique_per_year",
        conditional=True,
    ):
        return False
    last = dict(EntrySequence.objects.values_list("fiscal_year", "last_number"))
    years = {
        y.fiscal_year: y
        for y in ledger_pass.entry_totals(ctx).values()
        if y.numbered and y.fiscal_year is not None
    }
    if any(number and year not in years for year, number in last.items()):
        return False  # a sequence ahead of a year without posted numbers
    for year, y in years.items():
        top = last.get(year, 0)
        if not (y.numbered == y.positive == top and y.lowest == 1 and y.highest == top):
            return False
    return True


def _years() -> list[tuple[Any, ...]]:
    """Per fiscal year: (year, sequence's last number, posted, distinct numbers, lowest,
    highest, numbers outside 1..last, numbers below 1, has a sequence row)."""
    # One statement (SQLite reads each statement in its own snapshot): the numbers of each
    # year with its sequence, then the years that have a sequence but no posted entry.
    numbered = f"e.status IN {POSTED_SQL} AND e.number IS NOT NULL AND e.fiscal_year IS NOT NULL"
    return common.rows(
        f"""SELECT e.fiscal_year, coalesce(s.last_number, 0), count(*),
                   count(DISTINCT CASE WHEN e.number >= 1 THEN e.number END),
                   min(CASE WHEN e.number >= 1 THEN e.number END), max(e.number),
                   sum(CASE WHEN e.number > coalesce(s.last_number, 0) OR e.number < 1
                            THEN 1 ELSE 0 END),
                   sum(CASE WHEN e.number < 1 THEN 1 ELSE 0 END),
                   CASE WHEN s.fiscal_year IS NULL THEN 0 ELSE 1 END
              FROM finance_journalentry e
              LEFT JOIN finance_entrysequence s ON s.fiscal_year = e.fiscal_year
             WHERE {numbered}
             GROUP BY e.fiscal_year, s.last_number, s.fiscal_year
            UNION ALL
            SELECT s.fiscal_year, s.last_number, 0, 0, NULL, NULL, 0, 0, 1
              FROM finance_entrysequence s
             WHERE s.last_number <> 0 AND NOT EXISTS (
                   SELECT 1 FROM finance_journalentry e
                    WHERE e.fiscal_year = s.fiscal_year AND {numbered})
             ORDER BY 1"""  # noqa: S608
    )


def _year_finding(ctx: CheckContext, row: tuple[Any, ...]) -> Finding:
    """The finding for one fiscal year whose numbers are out of step: gaps, duplicates,
    numbers outside the sequence."""
    year, last, posted, distinct, lowest, highest, outside, zero, has_sequence = row
    top = max(last, highest or 0)
    missing = top - distinct
    duplicates = common.rows(
        f"""SELECT number, count(*) FROM finance_journalentry
             WHERE fiscal_year = %s AND status IN {POSTED_SQL} AND number IS NOT NULL
             GROUP BY number HAVING count(*) > 1 ORDER BY number LIMIT %s""",  # noqa: S608
        [year, ctx.sample_size],
    )
    extra = posted - zero - distinct  # rows beyond the first of their number
    runs = _gaps(year, top, lowest, ctx.sample_size) if missing else []
    sample: list[int] = []
    for first, end in runs:
        sample += range(first, min(end, first + ctx.sample_size) + 1)
    sample = sample[: ctx.sample_size] or [d[0] for d in duplicates]
    problems = []
    if missing:
        problems.append(f"{missing} number(s) missing")
    if extra:
        problems.append(f"{extra} duplicate(s)")
    if outside:
        problems.append(f"{outside} number(s) outside 1..{last}")
    if not problems:
        problems.append("numbers out of step with the sequence")
    return Finding(
        message=f"fiscal year {year}: {', '.join(problems)} (sequence at {last}"
        f"{'' if has_sequence else ', no sequence row'}, highest posted {highest or 0})",
        count=max(missing + extra + outside, 1),
        key=str(year),
        sample=sample,
        details={
            "fiscal_year": year,
            "last_number": last,
            "posted": posted,
            "highest_number": highest,
            "missing_count": missing,
            "gaps": [list(r) for r in runs],
            "duplicates": [{"number": n, "rows": c} for n, c in duplicates],
            "outside_sequence": outside,
            "sequence_row": bool(has_sequence),
        },
    )
