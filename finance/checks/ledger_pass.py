"""The shared passes of a full run: the ledger read once for several finance checks.

Each finance check used to read every posted line (or every posted entry) on its own. In a full
run (`ctx.since` None) they now share two small aggregates, computed by the first check that
needs one and kept in `ctx.shared` for the others:

- `line_totals`: the posted lines grouped by account, currency and side (one scan): exact sums,
  counts and the most decimal places used. finance.balance_cache compares them with the balance
  rows, finance.trial_balance nets them per currency, finance.amount_precision compares the
  places with each currency's minor unit.
- `entry_totals`: the posted entries with their period, per fiscal year (one scan): the counts
  finance.closed_period_postings looks for and the numbers finance.entry_number_gaps judges.

A pass only says whether a check is clean. It is built so that it can never call clean what
the check's own query would flag (its conditions are the same, or wider); when it is not clean,
the check runs its own query, which alone makes the findings: they are exactly what they were.
The checks of one run thus read the ledger of one moment (the pass's), and a check run alone
pays for the pass its check needs.

What differs per engine (the places of an amount, the parallel plan) is `PassSql`, one
implementation per dialect.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from django.db import connection

from config.db.features import guard_dialect
from config.registry import CheckContext
from finance.checks import common
from finance.money import CURRENCY_MINOR_UNITS, MONEY_DECIMAL_PLACES
from finance.sql import POSTED_SQL, money_sql, posted_line_sql

T = TypeVar("T")


def shared(ctx: CheckContext, key: str, compute: Callable[[], T]) -> T:
    """`compute()`, once per run: the first check that asks computes it, the others read it."""
    if key not in ctx.shared:
        ctx.shared[key] = compute()
    value: T = ctx.shared[key]
    return value


class PostgresPassSql:
    def places(self, expr: str) -> str:
        """SQL: how many decimal places `expr` really uses (100.5000 uses 1)."""
        return f"min_scale({expr})"

    def bytewise(self, expr: str) -> str:
        """SQL: text `expr` compared byte by byte. min/max of currency codes only tell one code
        from several, which the database's collation (strcoll per row) and bytes tell alike;
        bytes cost a fifth of the entry pass less (measured at 10^6 lines)."""
        return f'{expr} COLLATE "C"'

    def serial(self) -> None:
        """The passes aggregate in one process: on a busy or small machine, workers that each
        redo the whole aggregate (a parallel plan over a grouped subquery) cost more than they
        save. Local to the check's transaction."""
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")


class SqlitePassSql:
    def places(self, expr: str) -> str:
        """SQL: the smallest of the currencies' minor units (or the column's places + 1) that
        `expr` fits in: more than a currency's unit exactly when more than its places."""
        m = money_sql()
        steps = sorted(set(CURRENCY_MINOR_UNITS.values()))
        whens = " ".join(f"WHEN NOT ({m.unquantized(expr, p)}) THEN {p}" for p in steps)
        return f"CASE {whens} ELSE {MONEY_DECIMAL_PLACES + 1} END"

    def bytewise(self, expr: str) -> str:
        """SQLite compares text byte by byte (BINARY) unless told otherwise."""
        return expr

    def serial(self) -> None:
        return None


DIALECTS: dict[str, PostgresPassSql | SqlitePassSql] = {
    "postgresql": PostgresPassSql(),
    "sqlite": SqlitePassSql(),
}


def dialect() -> PostgresPassSql | SqlitePassSql:
    return DIALECTS[guard_dialect(connection)]


# Lines per account, currency and side --------------------------------------------------------


@dataclass
class LineTotals:
    """The posted lines per (account, currency, side): exact sum, count, most places used; and
    the balance rows (account -> cached debit, credit), read in the same snapshot."""

    groups: list[tuple[int, str, str, Decimal, int, int]] = field(default_factory=list)
    cached: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)

    def accounts(self) -> dict[int, tuple[Decimal, Decimal]]:
        """Account -> (debit, credit) of its posted lines, every currency together (as the
        balance cache keeps them)."""
        totals: dict[int, tuple[Decimal, Decimal]] = {}
        for account, _, side, amount, _, _ in self.groups:
            d, c = totals.get(account, (Decimal(0), Decimal(0)))
            totals[account] = (d + amount, c) if side == "D" else (d, c + amount)
        return totals

    def cache_clean(self) -> bool:
        """Every balance row equals its account's lines, and every account with lines has one
        (the balance_mismatches comparison, over every row and every line's account)."""
        totals = self.accounts()
        zero = (Decimal(0), Decimal(0))
        if any(account not in self.cached for account in totals):
            return False
        return all(totals.get(account, zero) == row for account, row in self.cached.items())

    def trial_clean(self) -> bool:
        """Debits equal credits in every currency."""
        net: dict[str, Decimal] = {}
        for _, currency, side, amount, _, _ in self.groups:
            net[currency] = net.get(currency, Decimal(0)) + (amount if side == "D" else -amount)
        return not any(net.values())

    def precision_clean(self) -> bool:
        """No line in an unknown currency or with places below its currency's minor unit."""
        for _, currency, _, _, _, places in self.groups:
            minor = CURRENCY_MINOR_UNITS.get(currency)
            if minor is None or places > minor:
                return False
        return True


def line_totals(ctx: CheckContext) -> LineTotals:
    return shared(ctx, "finance.line_totals", _line_totals)


def _line_totals() -> LineTotals:
    m, sql = money_sql(), dialect()
    sql.serial()
    groups = common.rows(
        f"""SELECT l.account_id, l.currency, l.side, sum({m.exact("l.amount")}), count(*),
                   max({sql.places("l.amount")})
              FROM finance_journalline l WHERE {posted_line_sql("l")}
             GROUP BY l.account_id, l.currency, l.side"""  # noqa: S608
    )
    cached = common.rows(
        f"""SELECT b.account_id, {m.exact("b.debit_total")}, {m.exact("b.credit_total")}
              FROM finance_accountbalance b"""  # noqa: S608
    )
    d = m.to_decimal
    return LineTotals(
        groups=[(a, cur, side, d(s), int(n), int(p or 0)) for a, cur, side, s, n, p in groups],
        cached={a: (d(debit), d(credit)) for a, debit, credit in cached},
    )


# Posted entries per fiscal year ----------------------------------------------------------------


@dataclass(frozen=True)
class EntryYear:
    """One fiscal year (None: posted entries without one) of posted entries."""

    fiscal_year: int | None
    posted: int
    after_close: int
    outside_period: int
    other_year: int
    numbered: int  # number and fiscal year set
    positive: int  # of those, numbered 1 or above
    lowest: int | None  # of those
    highest: int | None  # any number
    below_one: int


def entry_totals(ctx: CheckContext) -> dict[int | None, EntryYear]:
    return shared(ctx, "finance.entry_totals", _entry_totals)


def _entry_totals() -> dict[int | None, EntryYear]:
    dialect().serial()
    # The closed-period conditions are those of finance.closed_period_postings (NULLs never
    # match, as there); the number columns those of finance.entry_number_gaps' _years().
    numbered = "e.number IS NOT NULL AND e.fiscal_year IS NOT NULL"
    found = common.rows(
        f"""SELECT e.fiscal_year, count(*),
                   sum(CASE WHEN p.status = 'closed' AND e.posted_at > p.closed_at
                            THEN 1 ELSE 0 END),
                   sum(CASE WHEN e.entry_date < p.start_date OR e.entry_date > p.end_date
                            THEN 1 ELSE 0 END),
                   sum(CASE WHEN e.fiscal_year IS NOT NULL
                             AND (p.fiscal_year IS NULL OR e.fiscal_year <> p.fiscal_year)
                            THEN 1 ELSE 0 END),
                   sum(CASE WHEN {numbered} THEN 1 ELSE 0 END),
                   sum(CASE WHEN {numbered} AND e.number >= 1 THEN 1 ELSE 0 END),
                   min(CASE WHEN {numbered} AND e.number >= 1 THEN e.number END),
                   max(CASE WHEN {numbered} THEN e.number END),
                   sum(CASE WHEN {numbered} AND e.number < 1 THEN 1 ELSE 0 END)
              FROM finance_journalentry e
              LEFT JOIN finance_fiscalperiod p ON p.id = e.period_id
             WHERE e.status IN {POSTED_SQL}
             GROUP BY e.fiscal_year"""  # noqa: S608
    )
    return {row[0]: EntryYear(*_ints(row)) for row in found}


def _ints(row: tuple[Any, ...]) -> list[Any]:
    return [None if v is None else int(v) for v in row]
