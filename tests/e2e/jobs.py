"""Task functions that the end-to-end tests enqueue for a real qcluster.

Only the qcluster's workers import this module (by the dotted path given to async_task), after
`manage.py qcluster` has set Django up, so the project's modules are imported at the top.
"""

import os
import time
from pathlib import Path

from finance import services
from integrity.transactions import run_operation


def always_fails(reason: str) -> None:
    raise RuntimeError(f"this job always fails: {reason}")


def half_then_hang(code: str, marker: str) -> str:
    """An operation that writes two accounts; its first run hangs half-way until killed."""

    def first(ctx):
        services.account_create(code=f"{code}A", name="first", type="asset", currency="USD")

    def second(ctx):
        services.account_create(code=f"{code}B", name="second", type="asset", currency="USD")
        path = Path(marker)
        if not path.exists():
            path.write_text(str(os.getpid()))  # the worker's pid, for the test to kill
            time.sleep(60)

    run_operation("test.half_then_hang", [first, second], {"code": code})
    return "done"
