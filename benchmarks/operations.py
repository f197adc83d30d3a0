"""Overhead of run_operation against a bare transaction.atomic doing the same work.

    DATABASE_URL=postgres://... python benchmarks/operations.py [N]      (default N=2000)

The work is the same on both sides: one INSERT and one UPDATE. run_operation adds a savepoint
per step and the operation record that makes it exactly-once (an INSERT claiming the key as
the first statement, an UPDATE storing the result as the last).
"""

import time

from _django import figure, run_benchmark  # sets Django up: before any of the project's imports

# isort: split
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from integrity.models import DeadLetterEvent
from integrity.services import deadletter_create
from integrity.transactions import run_operation


def run(n: int) -> None:
    letter = deadletter_create(operation="bench", payload={})

    def work(ctx=None):
        DeadLetterEvent.objects.create(dead_letter=letter, action="bench")
        type(letter).objects.filter(pk=letter.pk).update(attempts=0)

    for _ in range(50):  # warm-up both paths
        with transaction.atomic():
            work()
        run_operation("bench", [work])

    start = time.perf_counter()
    for _ in range(n):
        with transaction.atomic():
            work()
    bare = time.perf_counter() - start

    start = time.perf_counter()
    for i in range(n):
        run_operation("bench", [work], {"i": i})
    managed = time.perf_counter() - start

    with CaptureQueriesContext(connection) as q_bare, transaction.atomic():
        work()
    with CaptureQueriesContext(connection) as q_op:
        run_operation("bench", [work], {"i": -1})

    print(
        f"run_operation overhead on {connection.display_name}, "
        f"{n} operations of 1 INSERT + 1 UPDATE"
    )
    print(f"  bare transaction.atomic : {bare * 1e6 / n:8.0f} us/op  ({len(q_bare)} statements)")
    print(f"  run_operation           : {managed * 1e6 / n:8.0f} us/op  ({len(q_op)} statements)")
    print(f"  overhead                : {(managed - bare) * 1e6 / n:8.0f} us/op")
    print(f"  ratio (run_operation / bare): {managed / bare:.2f}x")
    figure(
        "run_operation, one INSERT + one UPDATE",
        managed * 1e6 / n,
        "us/op",
        baseline=bare * 1e6 / n,
        baseline_name="bare transaction.atomic",
    )


if __name__ == "__main__":
    run_benchmark(run, 2000)
