"""Financial checks: the books reconcile, whatever wrote the rows.

Each check is set-based: one aggregate or anti-join over the ledger tables (a few more
statements only for the sample of what it found), never a loop over rows in Python. Sums and
money comparisons in raw SQL go through `finance.sql.money_sql()`, exact on both engines.
"""

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, QuerySet

from config.registry import CheckContext, Finding, register
from finance import selectors
from finance.models import (
    DEBIT_NORMAL,
    POSTED_STATES,
    AccountBalance,
    EntryStatus,
    FiscalPeriod,
    JournalEntry,
    PeriodStatus,
)
from finance.money import CURRENCY_MINOR_UNITS
from finance.sql import POSTED_SQL, money_sql, posted_line_sql

ENTRY = "finance.journalentry"


def _rows(sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


def _since(ctx: CheckContext) -> Any:
    return connection.ops.adapt_datetimefield_value(ctx.since)


def _window(ctx: CheckContext, column: str) -> tuple[str, list[Any]]:
    """`AND <column> >= since` for a windowed run, nothing for a full one."""
    if ctx.since is None:
        return "", []
    return f"AND {column} >= %s", [_since(ctx)]


def _posted_lines(ctx: CheckContext, alias: str) -> tuple[str, list[Any]]:
    """SQL: line `alias` belongs to a posted entry; in a windowed run, one posted since the
    window start (a semi-join on the few entries in the window)."""
    if ctx.since is None:
        return posted_line_sql(alias), []
    recent = f"w.status IN {POSTED_SQL} AND w.posted_at >= %s"
    sql = f"{alias}.entry_id IN (SELECT w.id FROM finance_journalentry w WHERE {recent})"  # noqa: S608
    return sql, [_since(ctx)]


def _entry_numbers(ids: Sequence[int]) -> dict[int, str]:
    entries = JournalEntry.objects.filter(pk__in=ids).only("fiscal_year", "number")
    return {e.pk: e.display_number for e in entries}


def _sample_of(qs: QuerySet, size: int) -> tuple[int, list[int]]:
    count = qs.count()
    return count, list(qs.order_by("pk").values_list("pk", flat=True)[:size]) if count else []


def _signed(alias: str) -> str:
    """SQL: the line's amount, debit positive and credit negative, exactly summable."""
    amount = money_sql().exact(f"{alias}.amount")
    return f"CASE WHEN {alias}.side = 'D' THEN {amount} ELSE -{amount} END"


def _entries(count: int) -> str:
    return f"{count} posted journal entr{'y' if count == 1 else 'ies'}"


def _entries_finding(key: str, what: str, count: int, sample: list, examples: list) -> Finding:
    """A finding about `count` posted entries (the sample's ids, examples in details)."""
    return Finding(
        message=f"{_entries(count)} {what}",
        count=count,
        object_type=ENTRY,
        object_id=str(sample[0]) if count == 1 else "",
        key=key,
        sample=sample,
        details={"entries": examples},
    )


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(str(int(i)) for i in ids)


# 1. Every posted entry balances -----------------------------------------------------------


@register("finance.entry_balanced", tag="finance", severity="critical", windowed=True)
def entry_balanced(ctx: CheckContext) -> Iterator[Finding]:
    """Every posted or reversed entry balances per currency and has at least two lines.

    The services refuse unbalanced entries and the database guard re-checks them at commit;
    an unbalanced posted entry means a line was changed, added or deleted with the guards off
    (a restore, a manual repair, a migration). Windowed: entries posted since the window start.
    """
    m = money_sql()
    window, params = _window(ctx, "e.posted_at")
    lines, line_params = _posted_lines(ctx, "l")
    signed, per_currency = _signed("l"), _signed("m")
    # One pass over the lines grouped by entry (in entry_id order: no sort, no hash). An entry
    # in one currency balances when its sum is zero; the few in several currencies are summed
    # again per currency. The LEFT JOIN from the entries also finds those without any line.
    sql = f"""
WITH suspect AS (
    SELECT e.id, coalesce(g.n, 0) AS n, g.diff, g.lo, g.hi
      FROM finance_journalentry e
      LEFT JOIN (SELECT l.entry_id, count(*) AS n, sum({signed}) AS diff,
                        min(l.currency) AS lo, max(l.currency) AS hi
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
    rows = _rows(sql, [*line_params, *params, ctx.sample_size])
    if not rows:
        return
    numbers = _entry_numbers([r[1] for r in rows])
    unbalanced = [r[1] for r in rows if r[0] == "unbalanced"]
    diffs: dict[int, dict[str, str]] = {}
    if unbalanced:
        found = _rows(
            f"""SELECT l.entry_id, l.currency, sum({signed}) FROM finance_journalline l
                 WHERE l.entry_id IN ({_ids(unbalanced)}) GROUP BY l.entry_id, l.currency
                HAVING sum({signed}) <> 0 ORDER BY l.entry_id, l.currency"""  # noqa: S608
        )
        for entry_id, currency, diff in found:
            diffs.setdefault(entry_id, {})[currency] = str(m.to_decimal(diff))
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
        yield _entries_finding(kind, what, total, sample, examples)


# 2. Trial balance -----------------------------------------------------------------------


@register("finance.trial_balance", tag="finance", severity="critical")
def trial_balance(ctx: CheckContext) -> Iterator[Finding]:
    """Debits equal credits over all posted lines, per currency (the trial balance is zero).

    Double entry means every currency's signed total is zero. A difference means some posted
    entry is unbalanced in that currency (the sample names them): lines edited around the
    services and their guards.
    """
    m = money_sql()
    amount, signed = m.exact("l.amount"), _signed("l")
    posted = posted_line_sql("l")
    off = _rows(
        f"""SELECT l.currency, sum(CASE WHEN l.side = 'D' THEN {amount} ELSE 0 END),
                   sum(CASE WHEN l.side = 'C' THEN {amount} ELSE 0 END)
              FROM finance_journalline l WHERE {posted}
             GROUP BY l.currency HAVING sum({signed}) <> 0
             ORDER BY l.currency"""  # noqa: S608
    )
    for currency, debits, credits in off:
        entries = _rows(
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
    one snapshot; the same query re-checks the touched accounts after every posting.
    """
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


# 4. Postings into closed periods ----------------------------------------------------------


@register("finance.closed_period_postings", tag="finance", severity="error")
def closed_period_postings(ctx: CheckContext) -> Iterator[Finding]:
    """No entry was posted into a closed period after it closed, and every posted entry lies in
    its period (dates and fiscal year).

    Closing locks the period and postings re-check it under that lock, so an entry posted after
    the close, or filed under a period that does not contain its date, was written or edited
    around the services; reports built per period would silently miss or double count it.
    """
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
        count, sample = _sample_of(qs, ctx.sample_size)
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
        yield _entries_finding(key, what, count, sample, examples)


# 5. Entry numbers -----------------------------------------------------------------------


def _gaps(year: int, top: int, lowest: int | None, size: int) -> list[tuple[int, int]]:
    """The first `size` runs of missing numbers in 1..top, as (first, last) pairs: the number
    after each posted number whose successor is not posted (an anti-join on the unique index)."""
    runs: list[tuple[int, int]] = []
    if lowest is None or lowest > 1:
        runs.append((1, top if lowest is None else lowest - 1))
    if lowest is None:
        return runs
    rows = _rows(
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
    # One statement (SQLite reads each statement in its own snapshot): the numbers of each
    # year with its sequence, then the years that have a sequence but no posted entry.
    numbered = f"e.status IN {POSTED_SQL} AND e.number IS NOT NULL AND e.fiscal_year IS NOT NULL"
    years = _rows(
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
    for year, last, posted, distinct, lowest, highest, outside, zero, has_sequence in years:
        if posted == distinct == last and (posted == 0 or (lowest == 1 and highest == last)):
            continue
        top = max(last, highest or 0)
        missing = top - distinct
        duplicates = _rows(
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
        yield Finding(
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


# 6. Amount precision ----------------------------------------------------------------------


@register("finance.amount_precision", tag="finance", severity="error", windowed=True)
def amount_precision(ctx: CheckContext) -> Iterator[Finding]:
    """Posted line amounts have no digits below their currency's minor unit (cents, yen, fils).

    The rules refuse such amounts, but the column keeps four places for every currency, so a
    raw write or an import can store 100.005 USD; it cannot be paid or reported exactly and
    sums drift from what the bank shows. Windowed: lines of entries posted since the window.
    """
    m = money_sql()
    lines, params = _posted_lines(ctx, "l")
    by_places: dict[int, list[str]] = {}
    for currency, places in sorted(CURRENCY_MINOR_UNITS.items()):
        by_places.setdefault(places, []).append(currency)
    conditions, cond_params = [], []
    for places, currencies in sorted(by_places.items()):
        marks = ", ".join(["%s"] * len(currencies))
        conditions.append(f"(l.currency IN ({marks}) AND {m.unquantized('l.amount', places)})")
        cond_params += currencies
    known = ", ".join(["%s"] * len(CURRENCY_MINOR_UNITS))
    conditions.append(f"l.currency NOT IN ({known})")
    cond_params += sorted(CURRENCY_MINOR_UNITS)
    rows = _rows(
        f"""SELECT currency, id, entry_id, amount, total FROM (
                SELECT l.currency, l.id, l.entry_id, l.amount,
                       row_number() OVER (PARTITION BY l.currency ORDER BY l.id) AS rn,
                       count(*) OVER (PARTITION BY l.currency) AS total
                  FROM finance_journalline l
                 WHERE {lines} AND ({" OR ".join(conditions)})
            ) x WHERE rn <= %s ORDER BY currency, id""",  # noqa: S608
        [*params, *cond_params, ctx.sample_size],
    )
    by_currency: dict[str, list[tuple]] = {}
    for row in rows:
        by_currency.setdefault(row[0], []).append(row)
    for currency, mine in by_currency.items():
        total = mine[0][4]
        minor = CURRENCY_MINOR_UNITS.get(currency)
        rule = f"{minor} decimal place(s)" if minor is not None else "an unknown currency"
        yield Finding(
            message=f"{total} posted line(s) in {currency} with more precision than {rule}",
            count=total,
            object_type="finance.journalline",
            key=currency,
            sample=[r[1] for r in mine],
            details={
                "currency": currency,
                "places": places,
                "since": ctx.since,
                "lines": [{"id": r[1], "entry_id": r[2], "amount": _stored(r[3])} for r in mine],
            },
        )


def _stored(value: object) -> str:
    """An amount as the database holds it (on SQLite a float: its shortest repr)."""
    return str(Decimal(repr(value))) if isinstance(value, float) else str(value)


# 7. Negative balances -------------------------------------------------------------------


@register("finance.negative_balances", tag="finance", severity="error")
def negative_balances(ctx: CheckContext) -> Iterator[Finding]:
    """No account that disallows a negative balance is below zero on its normal side.

    Read from the balance cache, not the lines: it is what the posting rule judges (so this
    finds what the rule would have refused: rows written around it, or allow_negative switched
    off while the account was negative), it costs one row per account rather than a scan of
    every line, and finance.balance_cache proves the cache equals the lines.
    """
    debit_normal = [str(t) for t in DEBIT_NORMAL]
    below = (
        AccountBalance.objects.filter(account__allow_negative=False)
        .filter(
            Q(account__type__in=debit_normal, debit_total__lt=F("credit_total"))
            | (~Q(account__type__in=debit_normal) & Q(credit_total__lt=F("debit_total")))
        )
        .select_related("account")
        .order_by("account_id")
    )
    for bal in below:
        account = bal.account
        side = "debit" if account.is_debit_normal else "credit"
        yield Finding(
            message=f"account {account.code} is at {bal.balance} {account.currency} on its "
            f"{side} side and does not allow a negative balance",
            object_type="finance.account",
            object_id=str(account.pk),
            sample=[account.code],
            details={
                "account_id": account.pk,
                "code": account.code,
                "type": account.type,
                "currency": account.currency,
                "balance": str(bal.balance),
                "debit_total": str(bal.debit_total),
                "credit_total": str(bal.credit_total),
                "source": "balance cache",
            },
        )


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
            ENTRY,
            entries.filter(status__in=POSTED_STATES).filter(
                Q(number__isnull=True) | Q(fiscal_year__isnull=True) | Q(posted_at__isnull=True)
            ),
            "posted or reversed without a number, fiscal year or posting time",
        ),
        (
            "reversed_without_reversal",
            ENTRY,
            entries.filter(status=EntryStatus.REVERSED).filter(~Exists(reversal)),
            "marked reversed but no posted entry reverses them",
        ),
        (
            "reversal_of_unreversed",
            ENTRY,
            entries.filter(reversal_of__isnull=False).exclude(
                reversal_of__status=EntryStatus.REVERSED
            ),
            "reverse an entry that is not marked reversed",
        ),
        (
            "unposted_with_number",
            ENTRY,
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
        count, sample = _sample_of(qs, ctx.sample_size)
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
