"""What the ledger's checks share: running raw SQL, the check window, samples, entry findings."""

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from config.registry import CheckContext, Finding
from finance.models import JournalEntry
from finance.sql import POSTED_SQL, money_sql, posted_line_sql

ENTRY = "finance.journalentry"


def rows(sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


def since(ctx: CheckContext) -> Any:
    return connection.ops.adapt_datetimefield_value(ctx.since)


def window(ctx: CheckContext, column: str) -> tuple[str, list[Any]]:
    """`AND <column> >= since` for a windowed run, nothing for a full one."""
    if ctx.since is None:
        return "", []
    return f"AND {column} >= %s", [since(ctx)]


def posted_lines(ctx: CheckContext, alias: str) -> tuple[str, list[Any]]:
    """SQL: line `alias` belongs to a posted entry; in a windowed run, one posted since the
    window start (a semi-join on the few entries in the window)."""
    if ctx.since is None:
        return posted_line_sql(alias), []
    recent = f"w.status IN {POSTED_SQL} AND w.posted_at >= %s"
    sql = f"{alias}.entry_id IN (SELECT w.id FROM finance_journalentry w WHERE {recent})"  # noqa: S608
    return sql, [since(ctx)]


def entry_numbers(ids: Sequence[int]) -> dict[int, str]:
    entries = JournalEntry.objects.filter(pk__in=ids).only("fiscal_year", "number")
    return {e.pk: e.display_number for e in entries}


def sample_of(qs: QuerySet, size: int) -> tuple[int, list[int]]:
    count = qs.count()
    return count, list(qs.order_by("pk").values_list("pk", flat=True)[:size]) if count else []


def signed(alias: str) -> str:
    """SQL: the line's amount, debit positive and credit negative, exactly summable."""
    amount = money_sql().exact(f"{alias}.amount")
    return f"CASE WHEN {alias}.side = 'D' THEN {amount} ELSE -{amount} END"


def entries(count: int) -> str:
    return f"{count} posted journal entr{'y' if count == 1 else 'ies'}"


def entries_finding(key: str, what: str, count: int, sample: list, examples: list) -> Finding:
    """A finding about `count` posted entries (the sample's ids, examples in details)."""
    return Finding(
        message=f"{entries(count)} {what}",
        count=count,
        object_type=ENTRY,
        object_id=str(sample[0]) if count == 1 else "",
        key=key,
        sample=sample,
        details={"entries": examples},
    )


def ids(ids: Sequence[int]) -> str:
    return ", ".join(str(int(i)) for i in ids)
