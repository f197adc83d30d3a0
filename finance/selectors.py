"""Read-side ledger queries shared by the API, the admin, the checks and the re-check.

Reports (balances, trial balance, statements) are finance/reports.py.
"""

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, DecimalField, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, TruncMonth

from config import registry
from finance.models import (
    POSTED_STATES,
    Account,
    AccountType,
    BalanceCheckpoint,
    EntrySequence,
    EntryStatus,
    FiscalPeriod,
    JournalEntry,
    JournalLine,
    PeriodStatus,
    Side,
)
from finance.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, ZERO
from finance.sql import PLACES, POSTED_SQL, MoneySql, money_sql, posted_line_sql
from integrity.models import CheckResult, Finding
from integrity.selectors import finding_list


def account_list() -> QuerySet[Account]:
    return Account.objects.select_related("parent", "balance")


def account_get(*, pk: int) -> Account:
    return account_list().get(pk=pk)


def period_list() -> QuerySet[FiscalPeriod]:
    return FiscalPeriod.objects.select_related("closed_by", "reopened_by")


def journal_entry_list() -> QuerySet[JournalEntry]:
    return JournalEntry.objects.select_related(
        "period", "created_by", "submitted_by", "approved_by", "posted_by", "reversal_of"
    ).prefetch_related("lines__account")


# Reconciliation: cached balances against posted lines -----------------------
#
# Raw SQL on purpose (see finance/sql.py): one statement reads one snapshot, and money is
# summed exactly on both engines.


@dataclass(frozen=True)
class BalanceMismatch:
    """An account whose cached totals differ from its posted lines (or that has no cache row)."""

    account_id: int
    code: str
    currency: str
    has_row: bool
    cached_debit: Decimal
    cached_credit: Decimal
    computed_debit: Decimal
    computed_credit: Decimal

    @property
    def debit_difference(self) -> Decimal:
        return self.cached_debit - self.computed_debit

    @property
    def credit_difference(self) -> Decimal:
        return self.cached_credit - self.computed_credit

    def as_details(self) -> dict[str, Any]:
        """Amounts as strings with the column's four places (a 0.0001 drift stays visible)."""
        return {
            "account_id": self.account_id,
            "code": self.code,
            "currency": self.currency,
            "balance_row": self.has_row,
            "cached": {"debit": str(self.cached_debit), "credit": str(self.cached_credit)},
            "computed": {"debit": str(self.computed_debit), "credit": str(self.computed_credit)},
        }


def _marks(values: Collection[object]) -> str:
    return ", ".join(["%s"] * len(values))


def _fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


def balance_mismatches(*, account_ids: Collection[int] | None = None) -> list[BalanceMismatch]:
    """Accounts (all, or `account_ids`) whose AccountBalance row differs from the sums of their
    posted lines, and accounts with posted lines but no balance row.

    ONE statement on purpose: under PostgreSQL READ COMMITTED each statement reads one snapshot,
    and a posting writes its lines and its balance rows in one transaction, so both sides come
    from the same moment and a posting committing meanwhile can never look like a mismatch.
    Used by the finance.balance_cache check (all accounts) and by the re-check after each
    posting (the touched accounts).
    """
    ids: list[int] | None = None
    if account_ids is not None:
        ids = sorted({int(i) for i in account_ids})
        if not ids:
            return []
    m = money_sql()
    only_lines = only_accounts = ""
    params: list[Any] = []
    if ids is not None:
        only_lines, only_accounts = (
            f"AND jl.account_id IN ({_marks(ids)})",
            f"AND a.id IN ({_marks(ids)})",
        )
        params = [*ids, *ids]
    cached_d, cached_c = m.exact("b.debit_total"), m.exact("b.credit_total")
    # Only constants and placeholders are interpolated; the ids travel as parameters.
    sql = f"""
SELECT a.id, a.code, a.currency, b.account_id IS NOT NULL,
       coalesce({cached_d}, 0), coalesce({cached_c}, 0), coalesce(l.d, 0), coalesce(l.c, 0)
  FROM finance_account a
  LEFT JOIN finance_accountbalance b ON b.account_id = a.id
  LEFT JOIN (
        SELECT jl.account_id,
               sum(CASE WHEN jl.side = 'D' THEN {m.exact("jl.amount")} ELSE 0 END) AS d,
               sum(CASE WHEN jl.side = 'C' THEN {m.exact("jl.amount")} ELSE 0 END) AS c
          FROM finance_journalline jl
         WHERE {posted_line_sql("jl")} {only_lines}
         GROUP BY jl.account_id
       ) l ON l.account_id = a.id
 WHERE (b.account_id IS NOT NULL OR l.account_id IS NOT NULL) {only_accounts}
   AND (b.account_id IS NULL
        OR coalesce(l.d, 0) <> {cached_d}
        OR coalesce(l.c, 0) <> {cached_c})
 ORDER BY a.id"""  # noqa: S608
    d = m.to_decimal
    return [
        BalanceMismatch(
            account_id=r[0],
            code=r[1],
            currency=r[2],
            has_row=bool(r[3]),
            cached_debit=d(r[4]),
            cached_credit=d(r[5]),
            computed_debit=d(r[6]),
            computed_credit=d(r[7]),
        )
        for r in _fetch(sql, params)
    ]


@dataclass(frozen=True)
class YearTotals:
    """An account's posted lines in one fiscal year, counted through entry `through_number`."""

    account_id: int
    fiscal_year: int
    through_number: int
    debit: Decimal
    credit: Decimal


@dataclass(frozen=True)
class Recheck:
    mismatches: list[BalanceMismatch]
    verified: list[YearTotals]  # checkpoints to move forward, for the accounts that matched


# Past this many entries since a checkpoint, read the account's own lines of that year (its
# index) rather than every entry numbered after the checkpoint.
RECHECK_RANGE_LIMIT = 2000

_ZEROS = (Decimal(0), Decimal(0))
Pair = tuple[int, int]  # (account id, fiscal year)


@dataclass
class _RecheckQuery:
    """The one statement of a re-check, UNION ALL of tagged parts:

    ('cache', account, 0, debit, credit)  the balance rows
    ('year', 0, year, last number, 0)     each year's last entry number, read again
    ('lines', account, year, debit, credit)  lines of the entries since the checkpoint
    ('whole', account, year, debit, credit)  all the account's lines of a year far behind
    """

    m: MoneySql
    parts: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    queried: set[Pair] = field(default_factory=set)  # (account, year) read this time
    whole: set[Pair] = field(default_factory=set)  # ... totalled from all its lines instead

    def sums(self, alias: str) -> str:
        exact = self.m.exact(f"{alias}.amount")
        return (
            f"sum(CASE WHEN {alias}.side = 'D' THEN {exact} ELSE 0 END), "
            f"sum(CASE WHEN {alias}.side = 'C' THEN {exact} ELSE 0 END)"
        )

    def add_cache(self, ids: list[int]) -> None:
        debit, credit = self.m.exact("b.debit_total"), self.m.exact("b.credit_total")
        self.parts.append(
            f"""SELECT 'cache', b.account_id, 0, {debit}, {credit}
                  FROM finance_accountbalance b
                 WHERE b.account_id IN ({_marks(ids)})"""  # noqa: S608
        )
        self.params += ids
        self.parts.append(
            "SELECT 'year', 0, fiscal_year, last_number, 0 FROM finance_entrysequence"
        )

    def add_since(self, account_id: int, year: int, through: int) -> None:
        """A range of the (fiscal_year, number) index: the few entries since the checkpoint."""
        self.parts.append(
            f"""SELECT 'lines', l.account_id, e.fiscal_year, {self.sums("l")}
                  FROM finance_journalentry e
                  JOIN finance_journalline l ON l.entry_id = e.id
                 WHERE e.fiscal_year = %s AND e.number > %s AND e.status IN {POSTED_SQL}
                   AND l.account_id = %s
                 GROUP BY l.account_id, e.fiscal_year"""  # noqa: S608
        )
        self.params += [year, through, account_id]

    def add_whole(self) -> None:
        """The accounts' own lines through their index, totalled per year (each line's year
        looked up by primary key; a join would scan all entries)."""
        accounts = sorted({a for a, _ in self.whole})
        self.parts.append(
            f"""SELECT 'whole', l.account_id,
                       (SELECT e.fiscal_year FROM finance_journalentry e WHERE e.id = l.entry_id),
                       {self.sums("l")}
                  FROM finance_journalline l
                 WHERE l.account_id IN ({_marks(accounts)}) AND {posted_line_sql("l")}
                 GROUP BY l.account_id, 3"""  # noqa: S608
        )
        self.params += accounts

    def rows(self) -> list[tuple[Any, ...]]:
        return _fetch(" UNION ALL ".join(self.parts), self.params)


Checkpoints = dict[Pair, tuple[int, Decimal, Decimal]]


def _checkpoints(ids: list[int]) -> Checkpoints:
    from_db = BalanceCheckpoint.objects.filter(account_id__in=ids).values_list(
        "account_id", "fiscal_year", "through_number", "debit_total", "credit_total"
    )
    return {(a, y): (t, Decimal(d), Decimal(c)) for a, y, t, d, c in from_db}


def _recheck_query(ids: list[int], points: Checkpoints) -> _RecheckQuery:
    """The parts for each (account, year) with entries numbered after its checkpoint."""
    query = _RecheckQuery(money_sql())
    query.add_cache(ids)
    last_before = dict(EntrySequence.objects.values_list("fiscal_year", "last_number"))
    for account_id in ids:
        for year, last in last_before.items():
            through = points.get((account_id, year), (0,))[0]
            if last <= through:
                continue  # nothing numbered after the checkpoint in that year
            query.queried.add((account_id, year))
            if last - through > RECHECK_RANGE_LIMIT:
                query.whole.add((account_id, year))
            else:
                query.add_since(account_id, year, through)
    if query.whole:
        query.add_whole()
    return query


def balance_recheck(*, account_ids: Collection[int], _retry: bool = True) -> Recheck:
    """The real-time re-check of a few accounts: cached balance against posted lines, reading
    only the lines posted since each account's verified checkpoints (BalanceCheckpoint, one per
    account and fiscal year).

    The checkpoints and each year's last entry number are read first; then ONE statement reads
    the balance rows, the years' last numbers again and, for each year with entries after the
    account's checkpoint, those entries' lines of the account, so cache, numbers and lines
    come from one snapshot. A year far behind (more than RECHECK_RANGE_LIMIT entries since) is
    totalled afresh from the account's own lines. Checkpoints read a moment earlier may be
    behind: counting from an older prefix is still exact, because posted lines never change.
    The checkpoints to write are returned for every account, matching or not: they are totals
    of lines, not of the cache. What this does not see is a line at or below a checkpoint
    edited behind the guards' back; callers confirm a mismatch with `balance_mismatches`
    before alerting.
    """
    ids = sorted({int(i) for i in account_ids})
    if not ids:
        return Recheck([], [])
    points = _checkpoints(ids)
    query = _recheck_query(ids, points)
    rows = query.rows()
    last_number = {r[2]: int(r[3]) for r in rows if r[0] == "year"}
    stale = [
        (a, y)
        for a in ids
        for y, last in last_number.items()
        if (a, y) not in query.queried and last > points.get((a, y), (0,))[0]
    ]
    if stale and _retry:  # a year or a posting appeared between the two reads: once more
        return balance_recheck(account_ids=ids, _retry=False)
    mismatches, verified = _recheck_compare(ids, rows, points, query, last_number)
    return Recheck(_named(mismatches), verified)


def _recheck_compare(
    ids: list[int],
    rows: list[tuple[Any, ...]],
    points: Checkpoints,
    query: _RecheckQuery,
    last_number: dict[int, int],
) -> tuple[list[BalanceMismatch], list[YearTotals]]:
    """Each account's cache against its checkpoints plus what was read since; and the totals
    verified per (account, year), to move its checkpoint to."""
    dec = query.m.to_decimal
    cached = {r[1]: (dec(r[3]), dec(r[4])) for r in rows if r[0] == "cache"}
    # Kept apart: an account's 'whole' rows cover every year, also those read as 'lines'.
    since = _read(rows, "lines", dec)
    whole = _read(rows, "whole", dec)
    mismatches, verified = [], []
    for account_id in ids:
        debit = credit = Decimal(0)
        for year, last in last_number.items():
            key = (account_id, year)
            if key in query.whole:
                d, c = whole.get(key, _ZEROS)
            else:  # counted on from the checkpoint
                _, d, c = points.get(key, (0, *_ZEROS))
                d_new, c_new = since.get(key, _ZEROS)
                d, c = d + d_new, c + c_new
            debit, credit = debit + d, credit + c
            if key in query.queried:
                verified.append(YearTotals(account_id, year, last, d, c))
        debit, credit = debit.quantize(PLACES), credit.quantize(PLACES)
        row = cached.get(account_id)
        if row is None and not debit and not credit:
            continue  # no balance row and no lines: nothing to compare
        if row != (debit, credit):
            cd, cc = row or _ZEROS
            mismatches.append(
                BalanceMismatch(
                    account_id=account_id,
                    code="",
                    currency="",
                    has_row=row is not None,
                    cached_debit=cd,
                    cached_credit=cc,
                    computed_debit=debit,
                    computed_credit=credit,
                )
            )
    return mismatches, verified


def _read(
    rows: list[tuple[Any, ...]], kind: str, dec: Callable[[Any], Decimal]
) -> dict[Pair, tuple[Decimal, Decimal]]:
    return {(r[1], int(r[2])): (dec(r[3]), dec(r[4])) for r in rows if r[0] == kind}


def _named(mismatches: list[BalanceMismatch]) -> list[BalanceMismatch]:
    """Code and currency of each mismatch: read only when there is something to report (not
    on every posting)."""
    if not mismatches:
        return mismatches
    wanted = Account.objects.filter(pk__in=[m.account_id for m in mismatches])
    named = {pk: (code, cur) for pk, code, cur in wanted.values_list("pk", "code", "currency")}
    return [
        replace(
            m,
            code=named.get(m.account_id, ("", ""))[0],
            currency=named.get(m.account_id, ("", ""))[1],
        )
        for m in mismatches
    ]


# The Financial dashboard (finance/admin/dashboard.py) ------------------------------------
#
# Each read is one query (or two), whatever the size of the ledger: counts and sums are
# grouped in the database, lists are sliced or paginated by the caller.

FINANCIAL_CHECK_TAG = "finance"
_MONEY = DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)


def pending_entry_list() -> QuerySet[JournalEntry]:
    """Entries waiting for approval, the longest waiting first, with what their rows show
    (author, submitter, period, lines: the caller pages them)."""
    return (
        JournalEntry.objects.filter(status=EntryStatus.PENDING_APPROVAL)
        .select_related("period", "created_by", "submitted_by")
        .prefetch_related("lines")
        .order_by("submitted_at", "id")
    )


@dataclass(frozen=True)
class PendingSummary:
    count: int
    oldest_submitted_at: datetime | None


def pending_entry_summary() -> PendingSummary:
    """How many entries wait for approval and since when the oldest does (one query)."""
    found = JournalEntry.objects.filter(status=EntryStatus.PENDING_APPROVAL).aggregate(
        n=Count("id"), oldest=Min("submitted_at")
    )
    return PendingSummary(count=found["n"], oldest_submitted_at=found["oldest"])


def period_status_list(*, today: date, limit: int = 13) -> list[FiscalPeriod]:
    """The `limit` latest periods that have begun, newest first, each with its entries
    waiting for approval (`pending_count`) and its drafts (`draft_count`) counted."""
    return list(
        FiscalPeriod.objects.filter(start_date__lte=today)
        .select_related("closed_by")
        .annotate(
            pending_count=Count("entries", filter=Q(entries__status=EntryStatus.PENDING_APPROVAL)),
            draft_count=Count("entries", filter=Q(entries__status=EntryStatus.DRAFT)),
        )
        .order_by("-start_date")[:limit]
    )


@dataclass(frozen=True)
class OverduePeriods:
    """Open periods whose end date has passed (their close is due)."""

    count: int
    oldest_end: date | None
    names: tuple[str, ...]


def periods_overdue(*, today: date, names: int = 3) -> OverduePeriods:
    """Open periods that ended before `today`: how many, the oldest end date and the first
    `names` of them (one query)."""
    overdue = list(
        FiscalPeriod.objects.filter(status=PeriodStatus.OPEN, end_date__lt=today)
        .order_by("end_date")
        .values_list("name", "end_date")
    )
    return OverduePeriods(
        count=len(overdue),
        oldest_end=overdue[0][1] if overdue else None,
        names=tuple(name for name, _ in overdue[:names]),
    )


@dataclass(frozen=True)
class MonthlyFigure:
    month: date
    currency: str
    income: Decimal
    expenses: Decimal


def income_expense_by_month(*, since: date, until: date) -> list[MonthlyFigure]:
    """Posted income and expenses per month and currency between two dates (one grouped
    query): income on its credit side, expenses on their debit side, net of corrections."""
    debit = Coalesce(Sum("amount", filter=Q(side=Side.DEBIT)), ZERO, output_field=_MONEY)
    credit = Coalesce(Sum("amount", filter=Q(side=Side.CREDIT)), ZERO, output_field=_MONEY)
    grouped = (
        JournalLine.objects.filter(
            entry__status__in=POSTED_STATES,
            entry__entry_date__gte=since,
            entry__entry_date__lte=until,
            account__type__in=(AccountType.INCOME, AccountType.EXPENSE),
        )
        .annotate(month=TruncMonth("entry__entry_date"))
        .values("month", "currency", "account__type")
        .annotate(d=debit, c=credit)
        .order_by("month", "currency")
    )
    figures: dict[tuple[date, str], list[Decimal]] = {}
    for g in grouped:
        pair = figures.setdefault((g["month"], g["currency"]), [ZERO, ZERO])
        if g["account__type"] == AccountType.INCOME:
            pair[0] += Decimal(g["c"]) - Decimal(g["d"])
        else:
            pair[1] += Decimal(g["d"]) - Decimal(g["c"])
    return [
        MonthlyFigure(month, currency, income.quantize(PLACES), expenses.quantize(PLACES))
        for (month, currency), (income, expenses) in sorted(figures.items())
    ]


def entries_posted_by_month(*, since: date, until: date) -> dict[date, int]:
    """{first day of the month: entries posted with a date in it} (one grouped query)."""
    grouped = (
        JournalEntry.objects.filter(
            status__in=POSTED_STATES, entry_date__gte=since, entry_date__lte=until
        )
        .annotate(month=TruncMonth("entry_date"))
        .values("month")
        .annotate(n=Count("id"))
        .order_by("month")
    )
    return {g["month"]: g["n"] for g in grouped}


def financial_check_names() -> list[str]:
    """The registered checks tagged `finance`."""
    return sorted(
        name for name, check in registry.all_checks().items() if check.tag == FINANCIAL_CHECK_TAG
    )


def financial_findings_open() -> QuerySet[Finding]:
    """Findings still open of the financial checks: those of each check's latest result
    (integrity's `finding_list`, restricted to it in the same query) that no explanation
    covers. A later passing run of a check leaves none of its findings open."""
    latest = (
        CheckResult.objects.filter(check_name=OuterRef("check_name"))
        .order_by("-started_at", "-pk")
        .values("pk")[:1]
    )
    return finding_list().filter(
        check_name__in=financial_check_names(),
        explanation__isnull=True,
        result_id=Subquery(latest),
    )


@dataclass(frozen=True)
class FindingSummary:
    """Open financial findings by severity, and when a financial check last ran (None:
    never, so there is nothing to judge by)."""

    by_severity: dict[str, int]
    last_run_at: datetime | None

    @property
    def total(self) -> int:
        return sum(self.by_severity.values())

    @property
    def serious(self) -> int:
        return self.by_severity.get("error", 0) + self.by_severity.get("critical", 0)


def financial_findings_summary() -> FindingSummary:
    """Two queries: the open findings counted by severity, the financial checks' last run."""
    names = financial_check_names()
    counted = (
        financial_findings_open()
        .order_by()
        .values("severity")
        .annotate(n=Count("id"))
        .values_list("severity", "n")
    )
    last = CheckResult.objects.filter(check_name__in=names).aggregate(at=Max("started_at"))["at"]
    return FindingSummary(by_severity=dict(counted), last_run_at=last)
