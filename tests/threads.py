"""Running a test's work in several threads at once, each on its own database connection."""

import threading

from django.db import connections


def run_threads(target, count: int) -> list[BaseException]:
    """Start `count` threads of `target(i)` together (a barrier); return what they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def wrapped(i):
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return errors
