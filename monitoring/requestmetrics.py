"""Per-request metrics, cheap enough to leave on: the middleware measures each request (route,
method, status class, duration, database queries and their time), adds it to this process's
tallies in memory and to the Prometheus histogram, and after the response has gone out writes
everything it holds, at most every MONITORING_FLUSH_SECONDS, in one statement per 500 buckets
(request_finished, connected in monitoring/apps.py).

The route is the URL pattern's name (`v1:journalentry-detail`), never the raw path: the set of
routes is bounded by the URL configuration, whatever clients send. A request no pattern
matched is `<unmatched>`; a method outside the standard ones is `OTHER`."""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Any, TypedDict

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse

from monitoring import prometheus
from monitoring.histogram import slot_of
from monitoring.services.metrics import (
    BucketKey,
    SlowRecord,
    Tally,
    request_buckets_write,
    slow_records_write,
)

logger = logging.getLogger("ledgerguard.monitoring")

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Slow queries kept of one request (a request that makes thousands of them is one finding).
MAX_SLOW_PER_REQUEST = 20
# Slow requests and queries held in memory between writes, at most.
MAX_PENDING_SLOW = 1000
# Tallies kept when writing keeps failing (the database is down): beyond this, the oldest
# minutes are dropped and counted as lost, so memory stays bounded.
MAX_PENDING_BUCKETS = 20_000


class Aggregator:
    """This process's tallies per (minute, route, method, status class)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[BucketKey, Tally] = {}
        self._slow: list[SlowRecord] = []
        self._last_write = time.monotonic()
        self.lost = 0  # requests dropped because the tallies could not be written
        self.in_flight = 0  # requests in a write under way

    def add(
        self,
        *,
        route: str,
        method: str,
        status: int,
        seconds: float,
        queries: int,
        query_seconds: float,
        at: datetime | None = None,
    ) -> None:
        moment = at or datetime.now(UTC)
        key = (moment.replace(second=0, microsecond=0), route, method, f"{status // 100}xx")
        with self._lock:
            tally = self._tallies.get(key)
            if tally is None:
                tally = self._tallies[key] = Tally()
            tally.count += 1
            tally.duration_sum += seconds
            tally.duration_max = max(tally.duration_max, seconds)
            tally.queries += queries
            tally.query_seconds += query_seconds
            tally.slots[slot_of(seconds)] += 1

    def add_slow(self, record: "SlowRecord") -> None:
        with self._lock:
            if len(self._slow) < MAX_PENDING_SLOW:
                self._slow.append(record)
            else:
                self.lost += 1

    def claim_write(self) -> bool:
        """True for the one request that is to write the tallies now (every
        MONITORING_FLUSH_SECONDS), False for the others."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_write < settings.MONITORING_FLUSH_SECONDS:
                return False
            self._last_write = now
            return True

    def write(self) -> int:
        """Write every tally (one statement per 500 buckets); what could not be written is kept
        for the next time. The number of buckets written."""
        with self._lock:
            taken, self._tallies = self._tallies, {}
            slow, self._slow = self._slow, []
            # Counted once: a failed write puts these tallies back, and requests added to them
            # then are not part of this write.
            requests = sum(t.count for t in taken.values())
            self.in_flight += requests
        try:
            return self._write(taken, slow)
        finally:
            with self._lock:
                self.in_flight -= requests

    def _write(self, taken: dict[BucketKey, Tally], slow: list[SlowRecord]) -> int:
        if not taken and not slow:
            return 0
        try:
            written = request_buckets_write(taken) if taken else 0
        except Exception as exc:  # noqa: BLE001 - metrics never break a request: kept for later
            self._put_back(taken, slow)
            logger.warning("request metrics not written, kept for the next time: %s", exc)
            return 0
        try:
            if slow:
                slow_records_write(slow)
        except Exception as exc:  # noqa: BLE001 - the buckets are in; these wait for the next
            self._put_back({}, slow)
            logger.warning("slow requests not written, kept for the next time: %s", exc)
        return written

    def discard(self) -> int:
        """Drop what is pending (a process that must not write it); the requests dropped."""
        with self._lock:
            taken, self._tallies = self._tallies, {}
            self._slow = []
        return sum(t.count for t in taken.values())

    def pending(self) -> int:
        with self._lock:
            return len(self._tallies)

    def _put_back(self, taken: dict[BucketKey, Tally], slow: list["SlowRecord"]) -> None:
        with self._lock:
            room = MAX_PENDING_SLOW - len(self._slow)
            self._slow[:0] = slow[: max(room, 0)]
            self.lost += max(len(slow) - max(room, 0), 0)
            for key, tally in taken.items():
                mine = self._tallies.get(key)
                if mine is None:
                    self._tallies[key] = tally
                else:
                    mine.merge(tally)
            overflow = len(self._tallies) - MAX_PENDING_BUCKETS
            if overflow > 0:
                for key in sorted(self._tallies)[:overflow]:
                    self.lost += self._tallies.pop(key).count


AGGREGATOR = Aggregator()


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED
    return match.view_name or match.route or UNMATCHED


class QueryTimer:
    """Counts the queries a request makes and their time, on every database alias, through
    Django's execute wrappers (one function call per query), and keeps the statements slower
    than MONITORING_SLOW_QUERY_MS (their text only; their shape is made when written)."""

    __slots__ = ("count", "seconds", "slow", "slow_after")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.slow: list[tuple[str, float]] = []
        self.slow_after = settings.MONITORING_SLOW_QUERY_MS / 1000

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            took = time.perf_counter() - started
            self.seconds += took
            self.count += 1
            if took >= self.slow_after and len(self.slow) < MAX_SLOW_PER_REQUEST:
                self.slow.append((sql, took))

    @contextmanager
    def around(self) -> Iterator["QueryTimer"]:
        with ExitStack() as stack:
            for alias in connections:
                stack.enter_context(connections[alias].execute_wrapper(self))
            yield self


class Measured(TypedDict):
    """One request's figures, as the aggregator, Prometheus and a slow record take them."""

    route: str
    method: str
    status: int
    seconds: float
    queries: int
    query_seconds: float


class RequestMetricsMiddleware:
    """Outermost but for the header check: its duration covers the whole of Django's work."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.enabled = settings.MONITORING_REQUEST_METRICS

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not self.enabled:
            return self.get_response(request)
        started = time.perf_counter()
        timer = QueryTimer()
        with timer.around():
            response = self.get_response(request)
        seconds = time.perf_counter() - started
        route = route_of(request)
        method = request.method if request.method in METHODS else "OTHER"
        measured: Measured = {
            "route": route,
            "method": method,
            "status": response.status_code,
            "seconds": seconds,
            "queries": timer.count,
            "query_seconds": timer.seconds,
        }
        AGGREGATOR.add(**measured)
        prometheus.observe_request(**measured)
        slow_request = seconds >= settings.MONITORING_SLOW_REQUEST_MS / 1000
        if slow_request or timer.slow:
            AGGREGATOR.add_slow(
                SlowRecord(
                    at=datetime.now(UTC),
                    # Set on the answer by config.middleware.RequestContextMiddleware.
                    request_id=response.get("X-Request-ID", "")[:64],
                    slow_request=slow_request,
                    slow_queries=timer.slow,
                    **measured,
                )
            )
        return response


# How long a stopping process waits to write what it holds, in all: longer than SQLite's busy
# timeout (20 s, config/settings.py), shorter than gunicorn's graceful timeout (30 s) after
# which the master kills the worker. The last write is not tried with less time than this left.
EXIT_WAIT_SECONDS = 25.0
MIN_EXIT_WRITE_SECONDS = 0.5


def _wait_for_locks_at_most(seconds: float) -> None:
    """Bound how long this thread's next statements wait for a lock (its connection is closed
    right after the exit write, so the setting goes with it)."""
    connection = connections["default"]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
        elif connection.vendor == "postgresql":
            cursor.execute(f"SET lock_timeout = {int(seconds * 1000)}")
            cursor.execute(f"SET statement_timeout = {int(seconds * 1000)}")


class Writer:
    """Writes the tallies in a thread of its own, one write at a time: a slow or locked
    database (SQLite's busy timeout, a PostgreSQL failover) holds no thread that serves
    requests. A write that falls due while one is under way is not dropped: the thread writes
    again before it ends. The thread closes its own connections when done."""

    def __init__(self, aggregator: Aggregator) -> None:
        self.aggregator = aggregator
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = False
        self._again = False

    def start(self) -> None:
        with self._lock:
            if self._running:
                self._again = True  # written by the running thread once its write is done
                return
            self._running, self._again = True, False
            self._thread = threading.Thread(
                target=self._run, name="ledgerguard-metrics-writer", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                self.aggregator.write()
                with self._lock:
                    if not self._again:
                        self._running = False
                        return
                    self._again = False
        finally:
            with self._lock:
                self._running = False
            connections.close_all()  # this thread's connections only

    def flush(self, timeout: float) -> int:
        """Within `timeout` seconds in all: wait for a write under way, then write what is left
        in the calling thread, waiting for a lock no longer than the time left (a process about
        to exit: gunicorn's worker_exit, which the master's graceful timeout bounds). Nothing is
        written when the write under way is still stuck. The number of buckets written."""
        deadline = time.monotonic() + timeout
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(max(deadline - time.monotonic(), 0))
        left = deadline - time.monotonic()
        if self.busy() or left < MIN_EXIT_WRITE_SECONDS:
            return 0
        _wait_for_locks_at_most(left)
        return self.aggregator.write()

    def busy(self) -> bool:
        with self._lock:
            return self._running


WRITER = Writer(AGGREGATOR)


def write_when_due(**_kwargs: Any) -> None:
    """request_finished: Django sends it when the response is closed, which WSGI servers do
    once it has been sent; the client does not wait for the write, and neither does the
    thread that served it (the write runs in the writer's thread)."""
    if settings.MONITORING_WRITE_AFTER_RESPONSE and AGGREGATOR.claim_write():
        WRITER.start()


def flush_at_exit() -> None:
    """Write what this process still holds before it exits (gunicorn.conf.py worker_exit), so
    that a restart or a deployment loses no request's figures."""
    if not settings.MONITORING_REQUEST_METRICS:
        return
    try:
        written = WRITER.flush(EXIT_WAIT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - the process exits either way; say what is lost
        logger.warning("request metrics: the exit write failed: %s", exc)
        written = 0
    finally:
        connections.close_all()
    stuck = AGGREGATOR.in_flight if WRITER.busy() else 0
    if AGGREGATOR.pending() or stuck:
        logger.warning(
            "request metrics: %d buckets could not be written, and a write of %d requests was "
            "still waiting for the database, when the process exited",
            AGGREGATOR.pending(),
            stuck,
        )
    else:
        logger.info("request metrics: %d buckets written before the process exited", written)
