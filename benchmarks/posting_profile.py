"""Where a posting's time and queries go (issue 15: measure first).

    scripts/with-postgres.sh .venv/bin/python benchmarks/posting_profile.py [N]   (N=300)

In a scratch database: one 2-line posting through `journal_entry_record`, every statement it
sends listed in order with its time (the shape, values stripped), and the statements summed
by kind and table; then N 2-line postings under cProfile, the functions that take the most
time (cumulative and own), and the time per posting spent waiting for the database against
the time spent in Python; and N more with each statement timed around Django's execute.
PG_DURABLE=1 runs it on a server with durability on, as `make bench` does.
"""

import cProfile
import io
import pstats
import re
import statistics
import time
from collections import Counter, defaultdict
from decimal import Decimal

from _django import run_benchmark  # sets Django up: before any of the project's imports

# isort: split
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from posting import chart

from finance import services
from finance.models import EntrySource
from monitoring.sqlshape import sql_shape
from tests.finance.factories import make_year

_TABLE = re.compile(r'(?:FROM|INTO|UPDATE|JOIN)\s+"?(\w+)"?', re.IGNORECASE)


def post(user, today, accounts: list[int], amount: str = "10.00") -> None:
    services.journal_entry_record(
        entry_date=today,
        description="profile",
        actor=user,
        source=EntrySource.SYSTEM,
        lines=[
            {"account": accounts[0], "side": "D", "amount": Decimal(amount)},
            {"account": accounts[1], "side": "C", "amount": Decimal(amount)},
        ],
    )


def kind_of(sql: str) -> str:
    verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
    table = _TABLE.search(sql)
    return f"{verb} {table.group(1) if table else ''}".strip()


def one_posting(user, today, accounts: list[int]) -> None:
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        post(user, today, accounts)
        took = time.perf_counter() - started
    queries = captured.captured_queries
    database = sum(float(q["time"]) for q in queries)
    print(f"one 2-line posting: {len(queries)} statements, {took * 1000:.2f} ms in all, ")
    print(f"  {database * 1000:.2f} ms of it in the statements (as Django times them)")
    for number, query in enumerate(queries, 1):
        shape = sql_shape(query["sql"])
        print(f"  {number:3d} {float(query['time']) * 1000:7.3f} ms  {shape[:150]}")
    print("by kind and table:")
    for kind, count in Counter(kind_of(q["sql"]) for q in queries).most_common():
        print(f"  {count:3d}  {kind}")


def per_statement(user, today, accounts: list[int], n: int) -> None:
    """N postings with each statement timed around Django's execute (microseconds, unlike
    Django's own log): the median per statement, and what is left for Python."""
    times: dict[str, list[float]] = defaultdict(list)

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            times[sql_shape(sql)[:70]].append(time.perf_counter() - started)

    totals = []
    with connection.execute_wrapper(timed):
        for _ in range(n):
            started = time.perf_counter()
            post(user, today, accounts)
            totals.append(time.perf_counter() - started)
    total = statistics.median(totals) * 1000
    medians = {shape: statistics.median(took) * 1000 for shape, took in times.items()}
    print(f"{n} 2-line postings, each statement timed: {total:.2f} ms per posting (median)")
    for shape, ms in sorted(medians.items(), key=lambda kv: -kv[1]):
        print(f"  {ms:7.3f} ms  {shape}")
    print(f"  {total - sum(medians.values()):7.3f} ms  the rest: Python, BEGIN and COMMIT")


def profiled(user, today, accounts: list[int], n: int) -> None:
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    for _ in range(n):
        post(user, today, accounts)
    profile.disable()
    took = time.perf_counter() - started
    print(f"{n} 2-line postings under cProfile: {took / n * 1000:.2f} ms each (profiled)")
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(order).print_stats(30)
        print(f"--- top 30 by {order} ---")
        print("\n".join(out.getvalue().splitlines()[6:40]))


def run(n: int) -> None:
    today = timezone.localdate()
    make_year(today.year)
    user = get_user_model().objects.create(username="profile")
    accounts = chart("3")
    post(user, today, accounts, "1.00")  # warm-up: caches, prepared plans
    one_posting(user, today, accounts)
    started = time.perf_counter()
    for _ in range(n):
        post(user, today, accounts)
    each = (time.perf_counter() - started) / n * 1000
    print(f"{n} 2-line postings, not profiled: {each:.2f} ms each")
    per_statement(user, today, accounts, n)
    profiled(user, today, accounts, n)


if __name__ == "__main__":
    run_benchmark(run, 300)
