"""The Prometheus side of the metrics, through prometheus-client: what the request middleware
observes, and the exposition at /metrics.

Under gunicorn, gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before any worker starts:
every worker then writes its samples to its own files there, and the exposition adds them up
across the workers (prometheus-client's multiprocess mode). Without it (runserver, tests, one
process) the process's own registry is exposed."""

import os
from collections.abc import Iterable
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
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from monitoring.histogram import BOUNDS
from monitoring.taskmetrics import TaskCollector

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
    """The text exposition of every metric (the request metrics added up across the workers
    in multiprocess mode, and what the database says of the task queue), and its content
    type. A registry per scrape: the collectors read the files and the database anew."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(TaskCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _ThisProcess(Collector):
    """The default registry's metrics (this process's own), inside a per-scrape registry."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()
