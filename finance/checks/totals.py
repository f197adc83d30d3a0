"""Totals: every posted entry balances, the trial balance is zero, the balance cache equals the
posted lines."""

from collections.abc import Iterator
from typing import Any

from config.registry import CheckContext, Finding, register
from finance import selectors
from finance.checks import common, ledger_pass
from finance.sql import POSTED_SQL, money_sql, posted_line_sql

# 1. Every posted entry balances -----------------------------------------------------------


@register("finance.entry_balanced", tag="finance", severity="critical", windowed=True)
def entry_balanced(ctx: CheckContext) -> Iterator[Finding]:
    """Every posted or reversed entry balances per currency and has at least two lines.

    The services refuse unbalanced entries and the database guard re-checks them at commit;
    an unbalanced posted entry means a line was changed, added or deleted with the guards off
    (a restore, a manual repair, a migration). Windowed: entries posted since the window start.
    """
    rows = _flagged_entries(ctx)
    if not rows:
        return
    numbers = common.entry_numbers([r[1] for r in rows])
    diffs = _differences([r[1] for r in rows if r[0] == "unbalanced"])
    for kind in ("unbalanced", "too_few_lines"):
        mine = [r for r in rows if r[0] == kind]
        if not mine:
            continue
        total, sample = mine[0][3], [r[1] for r in mine]
        if kind == "unbalanced":
            what = "unbalanced (debits minus credits per currency in details)"
            examples = [
                {
                    "id": r[1],
                    "number": numbers.get(r[1], ""),
                    "lines": int(r[2]),
                    "difference": diffs.get(r[1], {}),
                }
                for r in mine
            ]
        else:
            what = "with fewer than two lines"
            examples = [
                {"id": r[1], "number": numbers.get(r[1], ""), "lines": int(r[2])} for r in mine
            ]
        yield common.entries_finding(kind, what, total, sample, examples)


def _flagged_entries(ctx: CheckContext) -> list[tuple[Any, ...]]:
    """(kind, entry id, line count, count of that kind) for a sample of each kind of bad entry:
    "unbalanced" or "too_few_lines"."""
    sql = ledger_pass.dialect()
    sql.serial()
    window, params = common.window(ctx, "e.posted_at")
    lines, line_params = common.posted_lines(ctx, "l")
    signed, per_currency = common.signed("l"), common.signed("m")
    currency = sql.bytewise("l.currency")
    # One pass over the lines grouped by entry. An entry in one currency balances when its sum
    # is zero; the few in several currencies (lowest code <> highest, compared bytewise: no
    # collation per line) are summed again per currency. The LEFT JOIN from the entries also
    # finds those without any line.
    query = f"""
WITH suspect AS (
    SELECT e.id, coalesce(g.n, 0) AS n, g.diff, g.lo, g.hi
      FROM finance_journalentry e
      LEFT JOIN (SELECT l.entry_id, count(*) AS n, sum({signed}) AS diff,
                        min({currency}) AS lo, max({currency}) AS hi
                   FROM finance_journalline l WHERE {lines}
                  GROUP BY l.entry_id) g ON g.entry_id = e.id
     WHERE e.status IN {POSTED_SQL} {window}
       AND (g.n IS NULL OR g.n < 2 OR g.diff <> 0 OR g.lo <> g.hi)
), flagged AS (
    SELECT 'too_few_lines' AS kind, id, n FROM suspect WHERE n < 2
    UNION ALL
    SELECT 'unbalanced', id, n FROM suspect WHERE lo = hi AND diff <> 0
    UNION ALL
    SELECT DISTINCT 'unbalanced', s.id, s.n
      FROM suspect s JOIN finance_journalline m ON m.entry_id = s.id
     WHERE s.lo <> s.hi
     GROUP BY s.id, s.n, m.currency HAVING sum({per_currency}) <> 0
), ranked AS (
    SELECT kind, id, n, row_number() OVER (PARTITION BY kind ORDER BY id) AS rn,
           count(*) OVER (PARTITION BY kind) AS total
      FROM flagged
)
SELECT kind, id, n, total FROM ranked WHERE rn <= %s ORDER BY kind, id"""  # noqa: S608
    return common.rows(query, [*line_params, *params, ctx.sample_size])


def _differences(unbalanced: list[int]) -> dict[int, dict[str, str]]:
    """Debits minus credits per currency of each of the `unbalanced` entries."""
    diffs: dict[int, dict[str, str]] = {}
    if not unbalanced:
        return diffs
    signed = common.signed("l")
    found = common.rows(
        f"""SELECT l.entry_id, l.currency, sum({signed}) FROM finance_journalline l
             WHERE l.entry_id IN ({common.ids(unbalanced)}) GROUP BY l.entry_id, l.currency
            HAVING sum({signed}) <> 0 ORDER BY l.entry_id, l.currency"""  # noqa: S608
    )
    m = money_sql()
    for entry_id, currency, diff in found:
        diffs.setdefault(entry_id, {})[currency] = str(m.to_decimal(diff))
    return diffs


# 2. Trial balance -----------------------------------------------------------------------


@register("finance.trial_balance", tag="finance", severity="critical")
def trial_balance(ctx: CheckContext) -> Iterator[Finding]:
    """Debits equal credits over all posted lines, per currency (the trial balance is zero).

    Double entry means every currency's signed total is zero. A difference means some posted
    entry is unbalanced in that currency (the sample names them): lines edited around the
    services and their guards.
    """
    if ledger_pass.line_totals(ctx).trial_clean():
        return  # the run's pass over the lines: every currency nets to zero
    m = money_sql()
    amount, signed = m.exact("l.amount"), common.signed("l")
    posted = posted_line_sql("l")
    off = common.rows(
        f"""SELECT l.currency, sum(CASE WHEN l.side = 'D' THEN {amount} ELSE 0 END),
                   sum(CASE WHEN l.side = 'C' THEN {amount} ELSE 0 END)
              FROM finance_journalline l WHERE {posted}
             GROUP BY l.currency HAVING sum({signed}) <> 0
             ORDER BY l.currency"""  # noqa: S608
    )
    for currency, debits, credits in off:
        entries = common.rows(
            f"""SELECT l.entry_id, count(*) OVER ()
                  FROM finance_journalline l WHERE {posted} AND l.currency = %s
                 GROUP BY l.entry_id HAVING sum({signed}) <> 0
                 ORDER BY l.entry_id LIMIT %s""",  # noqa: S608
            [currency, ctx.sample_size],
        )
        debits, credits = m.to_decimal(debits), m.to_decimal(credits)
        difference = debits - credits
        yield Finding(
            message=f"trial balance off in {currency}: debits {debits}, credits {credits}, "
            f"difference {difference}",
            count=entries[0][1] if entries else 1,
            key=currency,
            sample=[e[0] for e in entries],
            details={
                "currency": currency,
                "debits": str(debits),
                "credits": str(credits),
                "difference": str(difference),
            },
        )


# 3. Balance cache -----------------------------------------------------------------------


@register("finance.balance_cache", tag="finance", severity="critical")
def balance_cache(ctx: CheckContext) -> Iterator[Finding]:
    """Each account's cached balance (AccountBalance) equals the sums of its posted lines.

    Postings update the cache under a row lock in the same transaction as the lines, and
    balances, statements' opening figures and the negative-balance rule read it. A difference
    means a balance row (or a line) was written around the services. One statement, so it reads
    one snapshot; the same query re-checks the touched accounts after every posting. In a run,
    the shared pass over the lines (ledger_pass.py) answers first; the query runs when it differs.
    """
    if ledger_pass.line_totals(ctx).cache_clean():
        return
    for mm in selectors.balance_mismatches():
        yield balance_finding(mm)


def balance_finding(mm: selectors.BalanceMismatch) -> Finding:
    """The finding for one mismatch; the real-time re-check builds the same one, so that an
    explanation given to the check also quiets the re-check."""
    what = (
        "has posted lines but no balance row"
        if not mm.has_row
        else f"cached balance differs from its lines: debit {mm.cached_debit} vs "
        f"{mm.computed_debit}, credit {mm.cached_credit} vs {mm.computed_credit}"
    )
    return Finding(
        message=f"account {mm.code} {what}",
        object_type="finance.account",
        object_id=str(mm.account_id),
        # The discrepancy is part of the key: an explanation covers this difference only.
        key=f"debit {mm.debit_difference} credit {mm.credit_difference}"
        if mm.has_row
        else "no balance row",
        sample=[mm.code],
        details=mm.as_details(),
        identity={},  # the key holds the differences; the totals move with every posting
    )
