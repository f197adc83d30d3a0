"""Check figures: a full run of every registered check over a million journal lines, against a
bare scan of the same lines, and the cost of the real-time re-check on posting throughput.

    DATABASE_URL=postgres://... python benchmarks/checks.py [LINES ...]
                                            (default 10,000 100,000 1,000,000)

Each size runs in a scratch database of its own; the checks (2.) run at every size, the
postings (3.) at the largest only. Every figure is also recorded with figure(...).

1. Load: LINES/2 posted entries of two lines each (an asset debited, an income credited, over
   200 accounts, dated over this year's periods), inserted by INSERT ... SELECT generate_series
   with triggers off (`session_replication_role = replica`: the database is a throwaway one and
   we are its superuser), then balance rows and the year's sequence set to match, so that every
   financial check passes, and two audit events per entry (1,000,000 for the default
   size). VACUUM ANALYZE, as a table in service would be.
2. Checks: `checks_run()` with every registered check (all tags), timed whole, three times,
   the fastest run kept with the per-check durations stored in its results; then, in the
   same process and connection, a bare
   `SELECT account_id, sum(...) FROM finance_journalline GROUP BY account_id` over the same
   lines (the least any reconciliation must read), best of three. Also the hourly finance run
   (windowed checks over the last CHECK_FINANCE_WINDOW_HOURS).
3. Postings: the posting service records entries one transaction each with
   FINANCE_REALTIME_RECHECK "sync" and "off", alternated in rounds, once to two accounts that
   each carry ~5,000 of the loaded lines and once to fresh accounts. The re-check is
   incremental (lines posted since each account's checkpoint), so its cost should not grow
   with the accounts' history; the re-check alone is also timed for accounts holding 10,000
   and 500,000 lines: reading every line (the full query), the first incremental re-check with
   no checkpoint yet, and one from a checkpoint.
"""

import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from _django import figure, setup  # sets Django up: before any of the project's imports

# isort: split
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from config import registry
from finance import recheck, selectors, services
from finance.models import AccountType, BalanceCheckpoint, EntrySource, JournalLine
from integrity import services as integrity
from integrity.models import CheckResult, CheckRun
from tests.factories import make_year

ACCOUNTS = 100  # of each side: assets debited, incomes credited
POSTINGS = 100  # per round and mode
ROUNDS = 3
FULL_RUNS = 3  # the full run is timed three times, the fastest kept


def load(
    lines: int, year_start: date, days: int, user_id: int, debit: list[int], credit: list[int]
) -> float:
    """Insert lines/2 balanced posted entries, balances and the sequence; return seconds."""
    entries = lines // 2
    start = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        insert_entries(cur, entries, year_start, days, user_id)
        insert_lines(cur, debit, credit)
        match_balances_and_sequence(cur, entries, year_start)
        insert_audit_events(cur, user_id)
        cur.execute("SET session_replication_role = origin")
        for table in (
            "finance_journalentry",
            "finance_journalline",
            "finance_accountbalance",
            "audit_auditevent",
        ):
            cur.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - start


def insert_entries(cur, entries: int, year_start: date, days: int, user_id: int) -> None:
    """`entries` posted entries numbered from 1, dated over `days` days from `year_start`."""
    cur.execute(
        """
INSERT INTO finance_journalentry (entry_date, period_id, description, reference, source, status,
       fiscal_year, number, created_by_id, created_at, approved_by_id, approved_at,
       posted_by_id, posted_at)
SELECT d.day, p.id, 'Bulk ' || g, '', 'system', 'posted', %(year)s, g, %(user)s, d.at,
       %(user)s, d.at, %(user)s, d.at
  FROM generate_series(1, %(entries)s) g
 CROSS JOIN LATERAL (SELECT (g - 1) * %(days)s / %(entries)s AS n) k
 CROSS JOIN LATERAL (SELECT %(start)s::date + k.n AS day,
                            %(start)s::timestamptz + k.n * interval '1 day'
                            + (g %% 86400) * interval '1 second' AS at) d
  JOIN finance_fiscalperiod p ON d.day BETWEEN p.start_date AND p.end_date""",
        {
            "year": year_start.year,
            "user": user_id,
            "entries": entries,
            "start": year_start,
            "days": days,
        },
    )


def insert_lines(cur, debit: list[int], credit: list[int]) -> None:
    """Two lines for each posted entry: one of the `debit` accounts debited, one of the `credit`
    accounts credited, the same amount."""
    cur.execute(
        """
INSERT INTO finance_journalline (entry_id, line_no, account_id, side, amount, currency, description)
SELECT e.id, s.n,
       CASE s.n WHEN 1 THEN (%(debit)s::int[])[1 + e.id %% %(k)s]
                ELSE (%(credit)s::int[])[1 + (e.id / %(k)s) %% %(k)s] END,
       CASE s.n WHEN 1 THEN 'D' ELSE 'C' END,
       round(((e.id * 7919) %% 100000 + 1)::numeric / 100, 2), 'USD', ''
  FROM finance_journalentry e CROSS JOIN (VALUES (1), (2)) s(n)
 WHERE e.status = 'posted'""",
        {"debit": debit, "credit": credit, "k": ACCOUNTS},
    )


def match_balances_and_sequence(cur, entries: int, year_start: date) -> None:
    """The balance rows and the year's sequence as the posting service would have left them."""
    cur.execute(
        """
UPDATE finance_accountbalance b SET debit_total = s.d, credit_total = s.c, updated_at = now()
  FROM (SELECT account_id, sum(CASE WHEN side = 'D' THEN amount ELSE 0 END) AS d,
               sum(CASE WHEN side = 'C' THEN amount ELSE 0 END) AS c
          FROM finance_journalline GROUP BY account_id) s
 WHERE b.account_id = s.account_id"""
    )
    cur.execute(
        "UPDATE finance_entrysequence SET last_number = %s WHERE fiscal_year = %s",
        [entries, year_start.year],
    )


def insert_audit_events(cur, user_id: int) -> None:
    # Two audit events per entry (created, posted), as the services write them, so that
    # integrity.audit_references joins a trail as long as a real one. Their hashes are
    # placeholders: no check here verifies the chain.
    cur.execute(
        """
INSERT INTO audit_auditevent (id, schema_version, occurred_at, actor_id, actor_repr, ip,
       user_agent, request_id, action, object_type, object_id, object_repr, changes, metadata,
       prev_hash, hash)
SELECT m.top + 2 * e.id - 1 + a.n, 1, e.posted_at, %(user)s, 'bench', NULL, '', '',
       CASE a.n WHEN 0 THEN 'journal_entry.created' ELSE 'journal_entry.posted' END,
       'finance.journalentry', e.id::text, '', '{}', '{}', '', md5(e.id::text || '/' || a.n)
  FROM finance_journalentry e CROSS JOIN (VALUES (0), (1)) a(n)
 CROSS JOIN (SELECT coalesce(max(id), 0) AS top FROM audit_auditevent) m
 WHERE e.status = 'posted'""",
        {"user": user_id},
    )
    cur.execute(  # the postings timed below append after these events
        """UPDATE audit_chainhead SET sequence = (SELECT max(id) FROM audit_auditevent),
                      hash = (SELECT hash FROM audit_auditevent ORDER BY id DESC LIMIT 1)"""
    )


BARE_SCAN = """SELECT account_id, sum(CASE WHEN side = 'D' THEN amount ELSE -amount END)
  FROM finance_journalline GROUP BY account_id"""


def bare_scan() -> float:
    with connection.cursor() as cur:
        start = time.perf_counter()
        cur.execute(BARE_SCAN)
        cur.fetchall()
        return time.perf_counter() - start


def postings(user, pairs: list[tuple[int, int]], today: date, seed: int) -> float:
    rnd = random.Random(seed)
    start = time.perf_counter()
    for _ in range(POSTINGS):
        debit, credit = rnd.choice(pairs)
        amount = Decimal(rnd.randint(100, 100_000)) / 100
        services.journal_entry_record(
            entry_date=today,
            description="bench",
            actor=user,
            source=EntrySource.SYSTEM,
            lines=[
                {"account": debit, "side": "D", "amount": amount},
                {"account": credit, "side": "C", "amount": amount},
            ],
        )
    return time.perf_counter() - start


def throughput(user, pairs, today) -> tuple[float, float, list[float]]:
    """Median seconds per round with the re-check sync and off, alternated; per-round ratios."""
    sync_runs, off_runs = [], []
    for r in range(ROUNDS):
        for mode, runs in (("sync", sync_runs), ("off", off_runs)):
            settings.FINANCE_REALTIME_RECHECK = mode
            runs.append(postings(user, pairs, today, seed=r))
    settings.FINANCE_REALTIME_RECHECK = "sync"
    ratios = sorted(s / o for s, o in zip(sync_runs, off_runs, strict=True))
    return statistics.median(sync_runs), statistics.median(off_runs), ratios


def chart(prefix: str, type_: str, count: int) -> list[int]:
    return [
        services.account_create(
            code=f"{prefix}{i:04d}", name=f"{prefix} {i}", type=type_, currency="USD"
        ).pk
        for i in range(count)
    ]


@dataclass
class Books:
    """The loaded ledger: the user who posts, the accounts debited and credited, the lines."""

    today: date
    user: object
    debit: list[int]
    credit: list[int]
    lines: int
    load_s: float


def open_books(n: int) -> Books:
    today = timezone.localdate()
    make_year(today.year)
    year_start = date(today.year, 1, 1)
    days = max((today - year_start).days, 1)  # dated up to yesterday: every period is open
    user = get_user_model().objects.create(username="bench")
    debit = chart("1", AccountType.ASSET, ACCOUNTS)
    credit = chart("4", AccountType.INCOME, ACCOUNTS)
    load_s = load(n, year_start, days, user.pk, debit, credit)
    return Books(today, user, debit, credit, JournalLine.objects.count(), load_s)


@dataclass
class CheckFigures:
    """The full run of every check against the bare scan, and the hourly finance run."""

    checks: int
    full: CheckRun
    full_s: float
    bare_s: float
    results: list[CheckResult]
    finance_ms: int
    hourly: CheckRun
    hourly_s: float


def timed_full_run() -> tuple[float, CheckRun]:
    start = time.perf_counter()
    full = integrity.checks_run(trigger="command")
    return time.perf_counter() - start, full


def measure_checks() -> CheckFigures:
    """The fastest of FULL_RUNS full runs (the machine is shared: the best shows what the checks
    cost, not what the neighbours did), its per-check durations, and the bare scan's best."""
    bare_scan()  # warm the buffers for both sides
    checks = registry.all_checks()
    full_s, full = min((timed_full_run() for _ in range(FULL_RUNS)), key=lambda run: run[0])
    bare_s = min(bare_scan() for _ in range(3))
    results = list(full.results.order_by("-duration_ms"))
    finance_ms = sum(r.duration_ms for r in results if r.tag == "finance")
    start = time.perf_counter()
    hourly = integrity.checks_run(
        trigger="schedule",
        tags=["finance"],
        since=timezone.now() - timedelta(hours=settings.CHECK_FINANCE_WINDOW_HOURS),
    )
    hourly_s = time.perf_counter() - start
    return CheckFigures(len(checks), full, full_s, bare_s, results, finance_ms, hourly, hourly_s)


def measure_recheck(books: Books, fresh: list[tuple[int, int]], per_account: int) -> dict:
    """Milliseconds of the full re-check, the first incremental one and one from a checkpoint,
    for fresh accounts, two loaded ones and every debited one."""
    debit, credit = books.debit, books.credit
    recheck_ms = {}
    for label, ids in (
        ("2 fresh accounts", [a for pair in fresh for a in pair][:2]),
        (f"2 accounts, {2 * per_account:,} lines", [debit[0], credit[0]]),
        (f"{ACCOUNTS} accounts, {books.lines // 2:,} lines", debit),
    ):
        selectors.balance_mismatches(account_ids=ids)
        start = time.perf_counter()
        assert selectors.balance_mismatches(account_ids=ids) == []
        full_ms = (time.perf_counter() - start) * 1000
        BalanceCheckpoint.objects.filter(account_id__in=ids).delete()
        start = time.perf_counter()
        first = selectors.balance_recheck(account_ids=ids)
        first_ms = (time.perf_counter() - start) * 1000
        assert first.mismatches == []
        recheck.balance_checkpoints_advance(first.verified)
        start = time.perf_counter()
        assert selectors.balance_recheck(account_ids=ids).mismatches == []
        recheck_ms[label] = (full_ms, first_ms, (time.perf_counter() - start) * 1000)
    return recheck_ms


def measure_far_behind(far: list[int]) -> dict[str, float]:
    """Checkpoints far behind: two loaded accounts verified only through entry 1,000 (of
    500,000). The re-check reads their own lines; the range alternative reads every entry
    numbered since."""
    behind_ms = {}
    for label, limit in (
        ("account's own lines (default)", selectors.RECHECK_RANGE_LIMIT),
        ("every entry since (range)", 10**9),
    ):
        BalanceCheckpoint.objects.filter(account_id__in=far).delete()
        with connection.cursor() as cur:
            cur.execute(
                """INSERT INTO finance_balancecheckpoint (account_id, fiscal_year, through_number,
                          debit_total, credit_total, verified_at)
                   SELECT l.account_id, e.fiscal_year, 1000,
                          sum(CASE WHEN l.side = 'D' THEN l.amount ELSE 0 END),
                          sum(CASE WHEN l.side = 'C' THEN l.amount ELSE 0 END), now()
                     FROM finance_journalline l JOIN finance_journalentry e ON e.id = l.entry_id
                    WHERE l.account_id IN (%s, %s) AND e.number <= 1000
                    GROUP BY l.account_id, e.fiscal_year""",
                far,
            )
        saved, selectors.RECHECK_RANGE_LIMIT = selectors.RECHECK_RANGE_LIMIT, limit
        try:
            start = time.perf_counter()
            assert selectors.balance_recheck(account_ids=far).mismatches == []
            behind_ms[label] = (time.perf_counter() - start) * 1000
        finally:
            selectors.RECHECK_RANGE_LIMIT = saved
    return behind_ms


def print_checks(books: Books, c: CheckFigures) -> None:
    lines = books.lines
    print(f"checks benchmark on PostgreSQL {connection.pg_version // 10000}")
    print(
        f"  load: {lines:,} journal lines ({lines // 2:,} entries, {2 * ACCOUNTS} accounts) "
        f"in {books.load_s:.1f} s"
    )
    print(
        f"  full run of all {c.checks} registered checks (best of {FULL_RUNS}): {c.full_s:.2f} s "
        f"(status {c.full.status}; {c.full.summary})"
    )
    for r in c.results:
        print(f"    {r.check_name:34} {r.tag:9} {r.status:5} {r.duration_ms / 1000:7.3f} s")
    print(f"  bare GROUP BY account_id scan of the same lines: {c.bare_s:.2f} s (best of 3)")
    print(
        f"  ratio full run / bare scan: {c.full_s / c.bare_s:.1f}x "
        f"(finance checks alone {c.finance_ms / 1000:.2f} s = "
        f"{c.finance_ms / 1000 / c.bare_s:.1f}x)"
    )
    balance = next(r for r in c.results if r.check_name == "finance.balance_cache")
    print(f"  finance.balance_cache / bare scan: {balance.duration_ms / 1000 / c.bare_s:.1f}x")
    record_checks(lines, c)
    print(
        f"  hourly finance run (windowed, last {settings.CHECK_FINANCE_WINDOW_HOURS} h): "
        f"{c.hourly_s:.2f} s (status {c.hourly.status})"
    )


def record_checks(lines: int, c: CheckFigures) -> None:
    """The figures of print_checks for `make bench`'s table, named by the number of lines."""
    size = f"{lines:.0e}".replace("+0", "").replace("+", "")
    bare = {"baseline": c.bare_s * 1000, "baseline_name": "bare GROUP BY account_id scan"}
    figure(f"finance checks, {size} lines", c.finance_ms, "ms", **bare, target="<= 3x")
    figure(f"full run, all checks, {size} lines", c.full_s * 1000, "ms", **bare, target="<= 10x")
    for r in c.results:
        figure(f"{r.check_name}, {size} lines", r.duration_ms, "ms", **bare)


def print_postings(per_account: int, hot, cold, recheck_ms, behind_ms, after: CheckRun) -> None:
    """The postings' throughput, the re-check's cost, and the checks after the postings."""
    for label, (sync_s, off_s, ratios) in (
        (f"accounts with ~{per_account:,} posted lines each", hot),
        ("fresh accounts", cold),
    ):
        spread = ", ".join(f"{x:.2f}" for x in ratios)
        print(f"  postings to {label} ({POSTINGS} per round, {ROUNDS} rounds alternated)")
        print(
            f"    re-check sync: {POSTINGS / sync_s:7.1f} entries/s "
            f"({sync_s * 1000 / POSTINGS:.2f} ms/entry)"
        )
        print(
            f"    re-check off : {POSTINGS / off_s:7.1f} entries/s "
            f"({off_s * 1000 / POSTINGS:.2f} ms/entry)"
        )
        print(f"    ratio (sync / off): {sync_s / off_s:.2f}x (per-round ratios {spread})")
    print(
        "  re-check of: all lines (balance_mismatches) | first incremental, no checkpoint "
        "yet | incremental from a checkpoint (balance_recheck)"
    )
    for label, (full_ms, first_ms, inc_ms) in recheck_ms.items():
        print(f"    {label:34} {full_ms:8.1f} ms | {first_ms:8.1f} ms | {inc_ms:8.1f} ms")
    print("  re-check of 2 accounts whose checkpoints are 499,000 entries behind, reading")
    for label, ms in behind_ms.items():
        print(f"    {label:34} {ms:8.1f} ms")
    print(f"  finance checks after the postings: {after.status} {after.summary}")


def posting_at_size(books: Books) -> None:
    """How a posting's cost grows with the ledger: 2-line entries recorded (re-check sync) to
    accounts that already carry their share of the loaded lines, one transaction each."""
    pairs = [(books.debit[0], books.credit[0]), (books.debit[1], books.credit[1])]
    postings(books.user, pairs, books.today, seed=98)  # warm-up: checkpoints, caches
    seconds = min(postings(books.user, pairs, books.today, seed=r) for r in range(ROUNDS))
    size = f"{books.lines:.0e}".replace("+0", "").replace("+", "")
    print(
        f"  posting with {books.lines:,} lines in the ledger: {POSTINGS / seconds:7.1f} entries/s"
        f" ({seconds * 1000 / POSTINGS:.2f} ms/entry, best of {ROUNDS} rounds of {POSTINGS})"
    )
    figure(f"posting, {size} lines in the ledger", POSTINGS / seconds, "entries/s")


def run_checks_only(n: int) -> None:
    """A smaller size: load, run the checks against the bare scan, print and record them; the
    posting throughput at this size."""
    books = open_books(n)
    print_checks(books, measure_checks())
    posting_at_size(books)


def run(n: int) -> None:
    books = open_books(n)
    user, today, debit, credit = books.user, books.today, books.debit, books.credit
    figures = measure_checks()
    loaded = [(debit[0], credit[0]), (debit[1], credit[1])]
    fresh = list(
        zip(chart("2", AccountType.ASSET, 2), chart("5", AccountType.INCOME, 2), strict=True)
    )
    postings(user, loaded + fresh, today, seed=99)  # warm-up
    per_account = JournalLine.objects.filter(account_id=debit[0]).count()
    recheck_ms = measure_recheck(books, fresh, per_account)
    behind_ms = measure_far_behind([debit[2], credit[2]])
    hot = throughput(user, loaded, today)
    cold = throughput(user, fresh, today)
    after = integrity.checks_run(trigger="command", tags=["finance"])
    print_checks(books, figures)
    posting_at_size(books)
    print_postings(per_account, hot, cold, recheck_ms, behind_ms, after)


def main() -> None:
    sizes = sorted({int(a) for a in sys.argv[1:]} or {10_000, 100_000, 1_000_000})
    for n in sizes:
        teardown = setup()
        try:
            (run if n == sizes[-1] else run_checks_only)(n)
        finally:
            teardown()


if __name__ == "__main__":
    main()
