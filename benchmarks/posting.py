"""Posting throughput: the posting service against raw psycopg, one at a time and in batches.

    DATABASE_URL=postgres://... python benchmarks/posting.py [N]      (default N=1500)

`make bench` runs it on a throwaway PostgreSQL with durability ON (PG_DURABLE=1: fsync and
synchronous commit, as production runs), which is where a commit costs what it really costs.

1. One entry per transaction, N entries of 2-4 lines, three sides in alternating rounds:
   - the service: `journal_entry_record` (every rule, its locks, history, the audit trail, the
     real-time re-check, the operation record);
   - raw psycopg into the SAME tables (so it pays the ledger's triggers): the entry as a draft,
     its lines, the balance rows, the sequence, then the entry marked posted;
   - raw psycopg into two PLAIN tables (an entry and its lines, no triggers, no foreign keys):
     the least any ledger pays for writing an entry. Issue 15's target: the service at 0.6x of
     this side's throughput or more.
   The queries of a 2-line posting are counted (target: at most 10, BEGIN and COMMIT included).
2. Batches: `journal_entries_record_batch` of 1,000 entries (about 3,000 lines) per call, in
   lines per second (target 20,000), against the plain tables written with one COPY per batch.
3. Concurrency: 4 and 8 writer processes recording entries to the same accounts at once
   (the bank account is in every entry); throughput and the errors they met (expect none).
"""

import multiprocessing
import random
import time
from decimal import Decimal

from _django import figure, run_benchmark  # sets Django up: before any of the project's imports

# isort: split
import psycopg
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from finance import selectors, services
from finance.models import AccountType, EntrySource, JournalEntry
from tests.finance.factories import make_year


def plan(n: int, accounts: list[int], seed: int = 7) -> list[list[tuple[int, str, Decimal]]]:
    """N balanced entries of 2-4 lines over the given accounts (debits hit asset accounts)."""
    rnd = random.Random(seed)
    entries = []
    for _ in range(n):
        k = rnd.choice((2, 3, 4))
        amount = Decimal(rnd.randint(100, 1_000_000)) / 100
        if k == 2:
            lines = [(accounts[0], "D", amount), (rnd.choice(accounts[1:]), "C", amount)]
        else:
            parts = [Decimal(rnd.randint(1, 100)) for _ in range(k - 1)]
            total = sum(parts)
            credits = [(p / total * amount).quantize(Decimal("0.01")) for p in parts]
            credits[-1] = amount - sum(credits[:-1])
            if credits[-1] <= 0:  # rounding ate the last part: fall back to two lines
                lines = [(accounts[0], "D", amount), (accounts[1], "C", amount)]
            else:
                lines = [(accounts[0], "D", amount)] + [
                    (accounts[1 + i % (len(accounts) - 1)], "C", c) for i, c in enumerate(credits)
                ]
        entries.append(lines)
    return entries


def chart(prefix: str) -> list[int]:
    """A bank account and five income accounts, codes starting with `prefix`."""
    debit = services.account_create(
        code=f"{prefix}00", name="Bank", type=AccountType.ASSET, currency="USD"
    )
    credits = [
        services.account_create(
            code=f"{prefix}{i:02d}", name=f"Income {i}", type=AccountType.INCOME, currency="USD"
        )
        for i in range(1, 6)
    ]
    return [debit.pk] + [a.pk for a in credits]


def record(user, today, accounts: list[int], lines, description: str) -> None:
    """One planned entry (`plan`'s (account index, side, amount) lines) through the service."""
    services.journal_entry_record(
        entry_date=today,
        description=description,
        actor=user,
        source=EntrySource.SYSTEM,
        lines=[{"account": accounts[a], "side": s, "amount": amt} for a, s, amt in lines],
    )


def post_with_service(user, today, accounts: list[int], entries) -> float:
    """Seconds the posting service takes to record `entries`, one transaction each."""
    start = time.perf_counter()
    for lines in entries:
        record(user, today, accounts, lines, "bench")
    return time.perf_counter() - start


def raw_dsn() -> str:
    """Django's database, as a psycopg connection string."""
    s = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=s["NAME"],
        user=s["USER"],
        password=s["PASSWORD"] or None,
        host=s["HOST"] or None,
        port=s["PORT"] or None,
    )


def post_raw(user, today, accounts: list[int], entries, period_id: int) -> float:
    """Seconds raw psycopg takes to write the same rows as the service, one transaction each."""
    with psycopg.connect(raw_dsn()) as raw:
        cur = raw.cursor()
        cur.execute(
            "SELECT last_number FROM finance_entrysequence WHERE fiscal_year = %s", [today.year]
        )
        number = cur.fetchone()[0]
        raw.commit()
        start = time.perf_counter()
        for lines in entries:
            number += 1
            write_raw_entry(cur, lines, accounts, number, user.pk, today, period_id)
            raw.commit()
        return time.perf_counter() - start


def write_raw_entry(cur, lines, accounts: list[int], number: int, user_id, today, period_id):
    """The entry as a draft, its lines, the touched balance rows and the year's sequence, then
    the entry marked posted: the rows the posting service writes."""
    now = timezone.now()
    cur.execute(
        "INSERT INTO finance_journalentry (entry_date, period_id, description, reference,"
        " source, status, created_by_id, created_at) VALUES (%s, %s, 'bench', '',"
        " 'system', 'draft', %s, %s) RETURNING id",
        [today, period_id, user_id, now],
    )
    entry_id = cur.fetchone()[0]
    cur.executemany(
        "INSERT INTO finance_journalline (entry_id, line_no, account_id, side, amount,"
        " currency, description) VALUES (%s, %s, %s, %s, %s, 'USD', '')",
        [(entry_id, i + 1, accounts[a], side, amt) for i, (a, side, amt) in enumerate(lines)],
    )
    for a, side, amt in lines:
        column = "debit_total" if side == "D" else "credit_total"
        cur.execute(
            f"UPDATE finance_accountbalance SET {column} = {column} + %s,"
            " updated_at = %s WHERE account_id = %s",
            [amt, now, accounts[a]],
        )
    cur.execute(
        "UPDATE finance_entrysequence SET last_number = %s WHERE fiscal_year = %s",
        [number, today.year],
    )
    cur.execute(
        "UPDATE finance_journalentry SET status = 'posted', fiscal_year = %s, number = %s,"
        " posted_by_id = %s, posted_at = %s WHERE id = %s",
        [today.year, number, user_id, now, entry_id],
    )


PLAIN_TABLES = """
CREATE TABLE IF NOT EXISTS bench_entry (
    id bigserial PRIMARY KEY, entry_date date NOT NULL, description varchar(500) NOT NULL,
    reference varchar(100) NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS bench_line (
    id bigserial PRIMARY KEY, entry_id bigint NOT NULL, line_no smallint NOT NULL,
    account_id bigint NOT NULL, side char(1) NOT NULL, amount numeric(20, 4) NOT NULL,
    currency char(3) NOT NULL);
"""


def post_plain(today, accounts: list[int], entries) -> float:
    """Seconds raw psycopg takes to write each entry and its lines into two plain tables, one
    commit each: the plain-table baseline."""
    with psycopg.connect(raw_dsn()) as raw:
        cur = raw.cursor()
        cur.execute(PLAIN_TABLES)
        raw.commit()
        start = time.perf_counter()
        for lines in entries:
            cur.execute(
                "INSERT INTO bench_entry (entry_date, description, reference, created_at)"
                " VALUES (%s, 'bench', '', now()) RETURNING id",
                [today],
            )
            entry_id = cur.fetchone()[0]
            cur.executemany(
                "INSERT INTO bench_line (entry_id, line_no, account_id, side, amount, currency)"
                " VALUES (%s, %s, %s, %s, %s, 'USD')",
                [(entry_id, i + 1, accounts[a], s, amt) for i, (a, s, amt) in enumerate(lines)],
            )
            raw.commit()
        return time.perf_counter() - start


def batch_with_service(user, today, accounts: list[int], entries, size: int) -> float:
    start = time.perf_counter()
    for at in range(0, len(entries), size):
        results = services.journal_entries_record_batch(
            entries=[
                {
                    "entry_date": today,
                    "description": "batch",
                    "lines": [
                        {"account": accounts[a], "side": s, "amount": amt} for a, s, amt in lines
                    ],
                }
                for lines in entries[at : at + size]
            ],
            actor=user,
        )
        refused = [r for r in results if r["status"] != "posted"]
        assert not refused, refused[:3]
    return time.perf_counter() - start


def batch_plain(today, accounts: list[int], entries, size: int) -> float:
    """The plain tables written a batch at a time: the entries, then all their lines by COPY."""
    with psycopg.connect(raw_dsn()) as raw:
        cur = raw.cursor()
        cur.execute(PLAIN_TABLES)
        raw.commit()
        start = time.perf_counter()
        for at in range(0, len(entries), size):
            chunk = entries[at : at + size]
            cur.execute(
                "INSERT INTO bench_entry (entry_date, description, reference, created_at)"
                " SELECT %s, 'batch', '', now() FROM generate_series(1, %s) RETURNING id",
                [today, len(chunk)],
            )
            ids = [row[0] for row in cur.fetchall()]
            with cur.copy(
                "COPY bench_line (entry_id, line_no, account_id, side, amount, currency) FROM STDIN"
            ) as copy:
                for entry_id, lines in zip(ids, chunk, strict=True):
                    for i, (a, side, amt) in enumerate(lines):
                        copy.write_row((entry_id, i + 1, accounts[a], side, amt, "USD"))
            raw.commit()
        return time.perf_counter() - start


def _writer(args) -> tuple[int, list[str]]:
    """One writer process: record its share of entries; (posted, errors)."""
    user_id, today, accounts, entries = args
    connection.close()  # a connection of its own, not the parent's
    user = get_user_model().objects.get(pk=user_id)
    errors, posted = [], 0
    for lines in entries:
        try:
            record(user, today, accounts, lines, "concurrent")
            posted += 1
        except Exception as exc:  # noqa: BLE001 - counted and shown: the figure is "none"
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
    connection.close()
    return posted, errors


def concurrent(user, today, accounts: list[int], entries, writers: int) -> tuple[float, int, list]:
    """`writers` processes at once, all to the shared accounts; (seconds, posted, errors)."""
    shares = [entries[i::writers] for i in range(writers)]
    connection.close()
    with multiprocessing.get_context("fork").Pool(writers) as pool:
        start = time.perf_counter()
        done = pool.map(_writer, [(user.pk, today, accounts, share) for share in shares])
        seconds = time.perf_counter() - start
    return seconds, sum(d[0] for d in done), [e for d in done for e in d[1]]


def durability() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('fsync'), current_setting('synchronous_commit')")
        fsync, sync = cursor.fetchone()
    return f"fsync={fsync}, synchronous_commit={sync}"


def two_line_queries(user, today, accounts: list[int]) -> int:
    """Queries of one 2-line posting, BEGIN and COMMIT included."""
    with CaptureQueriesContext(connection) as queries:
        services.journal_entry_record(
            entry_date=today,
            description="counted",
            actor=user,
            source=EntrySource.SYSTEM,
            lines=[
                {"account": accounts[0], "side": "D", "amount": Decimal("1.00")},
                {"account": accounts[1], "side": "C", "amount": Decimal("1.00")},
            ],
        )
    return len(queries)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else 0.0


def run(n: int) -> None:
    today = timezone.localdate()
    make_year(today.year)
    user = get_user_model().objects.create(username="bench")
    service_accounts, raw_accounts, batch_accounts = chart("1"), chart("2"), chart("3")
    entries = plan(n, list(range(6)))
    lines_total = sum(len(e) for e in entries)
    first_queries = two_line_queries(user, today, service_accounts)  # also the warm-up
    queries = two_line_queries(user, today, service_accounts)
    period_id = JournalEntry.objects.values_list("period_id", flat=True).first()

    # 1. one entry per transaction, the three sides alternating in rounds of n/3 entries
    third = max(1, n // 3)
    times = {"service": 0.0, "same": 0.0, "plain": 0.0}
    for at in range(0, n, third):
        chunk = entries[at : at + third]
        times["service"] += post_with_service(user, today, service_accounts, chunk)
        times["same"] += post_raw(user, today, raw_accounts, chunk, period_id)
        times["plain"] += post_plain(today, raw_accounts, chunk)
    service, same, plain = (rate(n, times[k]) for k in ("service", "same", "plain"))
    print(f"posting benchmark on PostgreSQL {connection.pg_version // 10000} ({durability()})")
    print(f"  one entry per transaction: {n} entries ({lines_total} lines, 2-4 per entry)")
    print(f"    service            : {service:8.1f} entries/s  ({1000 / service:.2f} ms/entry)")
    print(f"    raw, same tables   : {same:8.1f} entries/s  ({1000 / same:.2f} ms/entry)")
    print(f"    raw, plain tables  : {plain:8.1f} entries/s  ({1000 / plain:.2f} ms/entry)")
    print(f"    service / plain tables: {service / plain:.2f}x   (target 0.6x or more)")
    print(f"    service / same tables : {service / same:.2f}x")
    print(f"    queries per 2-line posting: {queries} (the run's first: {first_queries})")
    figure(
        "posting, one per transaction",
        service,
        "entries/s",
        baseline=plain,
        baseline_name="raw psycopg, plain tables",
        target=">= 0.6x",
    )
    figure(
        "posting vs raw into the same tables",
        service,
        "entries/s",
        baseline=same,
        baseline_name="raw psycopg, same tables",
    )
    figure("queries per 2-line posting", queries, "queries", target="<= 10")

    # 2. batches
    size = 1000
    batch_entries = plan(max(n, 3 * size), list(range(6)), seed=11)
    batch_lines = sum(len(e) for e in batch_entries)
    batch_s = batch_with_service(user, today, batch_accounts, batch_entries, size)
    plain_s = batch_plain(today, raw_accounts, batch_entries, size)
    print(f"  batches of {size} entries: {len(batch_entries)} entries, {batch_lines} lines")
    print(f"    service            : {rate(batch_lines, batch_s):10.0f} lines/s")
    print(f"    raw, plain tables  : {rate(batch_lines, plain_s):10.0f} lines/s (one COPY each)")
    figure(
        "batch posting",
        rate(batch_lines, batch_s),
        "lines/s",
        baseline=rate(batch_lines, plain_s),
        baseline_name="plain tables, COPY per batch",
        target=">= 20000/s",
    )

    # 3. concurrency
    shared = plan(n, list(range(6)), seed=13)
    for writers in (4, 8):
        seconds, posted, errors = concurrent(user, today, service_accounts, shared, writers)
        print(
            f"  {writers} writers to the same accounts: {rate(posted, seconds):8.1f} entries/s,"
            f" {posted} posted, {len(errors)} errors"
        )
        for error in errors[:5]:
            print(f"    error: {error}")
        figure(
            f"posting, {writers} concurrent writers",
            rate(posted, seconds),
            "entries/s",
            baseline=service,
            baseline_name="one writer",
            target="0 errors",
        )
    mismatches = selectors.balance_mismatches()
    print(f"  balance cache against the lines afterwards: {len(mismatches)} mismatches")


if __name__ == "__main__":
    run_benchmark(run, 1500)
