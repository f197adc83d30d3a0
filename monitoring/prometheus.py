"""The Prometheus side of the metrics, through prometheus-client: what the request middleware
observes, and the exposition at /metrics.

Under gunicorn, gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before any worker starts:
every worker then writes its samples to its own files there, and the exposition adds them up
across the workers (prometheus-client's multiprocess mode). Without it (runserver, tests, one
process) the process's own registry is exposed."""

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from monitoring.histogram import BOUNDS

REQUEST_SECONDS = Histogram(
    "ledgerguard_http_request_duration_seconds",
    "Time Django took to answer, by URL pattern name, method and status class.",
    ["route", "method", "status_class"],
    buckets=BOUNDS,
)
REQUEST_QUERIES = Counter(
    "ledgerguard_http_request_db_queries",
    "Database queries made by requests, by URL pattern name and method.",
    ["route", "method"],
)
REQUEST_QUERY_SECONDS = Counter(
    "ledgerguard_http_request_db_query_seconds",
    "Time requests spent in database queries, by URL pattern name and method.",
    ["route", "method"],
)


# The labelled children, kept: `.labels()` costs more than the observation itself. Bounded by
# the routes in the URL configuration times methods times status classes.
_children: dict[tuple[str, str, str], tuple[Any, Any, Any]] = {}


def observe_request(
    *, route: str, method: str, status: int, seconds: float, queries: int, query_seconds: float
) -> None:
    key = (route, method, f"{status // 100}xx")
    children = _children.get(key)
    if children is None:
        children = _children[key] = (
            REQUEST_SECONDS.labels(*key),
            REQUEST_QUERIES.labels(route, method),
            REQUEST_QUERY_SECONDS.labels(route, method),
        )
    duration, query_count, query_time = children
    duration.observe(seconds)
    if queries:
        query_count.inc(queries)
        query_time.inc(query_seconds)


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def exposition() -> tuple[bytes, str]:
    """The text exposition of every metric (added up across the workers in multiprocess
    mode), and its content type."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
