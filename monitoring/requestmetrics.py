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
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse

from monitoring import prometheus
from monitoring.histogram import slot_of
from monitoring.services.metrics import BucketKey, Tally, request_buckets_write

logger = logging.getLogger("ledgerguard.monitoring")

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Tallies kept when writing keeps failing (the database is down): beyond this, the oldest
# minutes are dropped and counted as lost, so memory stays bounded.
MAX_PENDING_BUCKETS = 20_000


class Aggregator:
    """This process's tallies per (minute, route, method, status class)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[BucketKey, Tally] = {}
        self._last_write = time.monotonic()
        self.lost = 0  # requests dropped because the tallies could not be written

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
        if not taken:
            return 0
        try:
            return request_buckets_write(taken)
        except DatabaseError as exc:
            self._put_back(taken)
            logger.warning("request metrics not written, kept for the next time: %s", exc)
            return 0

    def discard(self) -> int:
        """Drop what is pending (a process that must not write it); the requests dropped."""
        with self._lock:
            taken, self._tallies = self._tallies, {}
        return sum(t.count for t in taken.values())

    def pending(self) -> int:
        with self._lock:
            return len(self._tallies)

    def _put_back(self, taken: dict[BucketKey, Tally]) -> None:
        with self._lock:
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
    Django's execute wrappers (one function call per query)."""

    __slots__ = ("count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.count += 1

    @contextmanager
    def around(self) -> Iterator["QueryTimer"]:
        with ExitStack() as stack:
            for alias in connections:
                stack.enter_context(connections[alias].execute_wrapper(self))
            yield self


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
        AGGREGATOR.add(
            route=route,
            method=method,
            status=response.status_code,
            seconds=seconds,
            queries=timer.count,
            query_seconds=timer.seconds,
        )
        prometheus.observe_request(
            route=route,
            method=method,
            status=response.status_code,
            seconds=seconds,
            queries=timer.count,
            query_seconds=timer.seconds,
        )
        return response


def write_when_due(**_kwargs: Any) -> None:
    """request_finished: Django sends it when the response is closed, which WSGI servers do
    once it has been sent; the client does not wait for the write."""
    if AGGREGATOR.claim_write():
        try:
            AGGREGATOR.write()
        except Exception:  # metrics never break a request; the log says why
            logger.exception("request metrics could not be written")
