"""Posting throughput: the posting service against raw psycopg writing the same rows.

    DATABASE_URL=postgres://... python benchmarks/posting.py [N]      (default N=1500)

Both sides write N entries of 2-4 lines, one transaction per entry, into the same tables (so
both pay for the ledger's triggers): the raw side inserts the entry as a draft, its lines,
updates the touched balance rows and the year's sequence, then marks it posted. The service
additionally validates every rule, takes its row locks, and writes django-simple-history rows.
"""

import random
import time
from decimal import Decimal

from _django import run_benchmark  # sets Django up: before any of the project's imports

# isort: split
import psycopg
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from finance import services
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


def warm_up(user, today, accounts: list[int]) -> int:
    """Warm-up and a query count for one posting."""
    with CaptureQueriesContext(connection) as queries:
        services.journal_entry_record(
            entry_date=today,
            description="warm-up",
            actor=user,
            source=EntrySource.SYSTEM,
            lines=[
                {"account": accounts[0], "side": "D", "amount": Decimal("1.00")},
                {"account": accounts[1], "side": "C", "amount": Decimal("1.00")},
            ],
        )
    return len(queries)


def post_with_service(user, today, accounts: list[int], entries) -> float:
    """Seconds the posting service takes to record `entries`, one transaction each."""
    start = time.perf_counter()
    for lines in entries:
        services.journal_entry_record(
            entry_date=today,
            description="bench",
            actor=user,
            source=EntrySource.SYSTEM,
            lines=[{"account": accounts[a], "side": s, "amount": amt} for a, s, amt in lines],
        )
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


def report(n: int, entries, *, service_s: float, raw_s: float, per_entry_queries: int) -> None:
    lines_total = sum(len(e) for e in entries)
    print(f"posting benchmark on PostgreSQL {connection.pg_version // 10000}")
    print(f"  entries: {n} ({lines_total} lines, 2-4 per entry), one transaction per entry")
    print(
        f"  posting service : {n / service_s:8.1f} entries/s  ({service_s * 1000 / n:.2f} ms/entry,"
        f" {per_entry_queries} queries per 2-line posting)"
    )
    print(f"  raw psycopg     : {n / raw_s:8.1f} entries/s  ({raw_s * 1000 / n:.2f} ms/entry)")
    print(f"  ratio (service time / raw time): {service_s / raw_s:.2f}x")


def run(n: int) -> None:
    today = timezone.localdate()
    make_year(today.year)
    user = get_user_model().objects.create(username="bench")
    service_accounts, raw_accounts = chart("1"), chart("2")
    entries = plan(n, list(range(6)))
    per_entry_queries = warm_up(user, today, service_accounts)
    service_s = post_with_service(user, today, service_accounts, entries)
    period_id = JournalEntry.objects.values_list("period_id", flat=True).first()
    raw_s = post_raw(user, today, raw_accounts, entries, period_id)
    report(n, entries, service_s=service_s, raw_s=raw_s, per_entry_queries=per_entry_queries)


if __name__ == "__main__":
    run_benchmark(run, 1500)
