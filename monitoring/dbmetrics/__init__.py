"""Database metrics, one implementation per engine: `metrics_for(connection)` picks the one for
the connection's guard dialect (config/db/features.py), never by `connection.vendor`."""

from collections.abc import Callable
from typing import Any

from config.db.features import project_features
from monitoring.dbmetrics.base import DatabaseFigures, DatabaseMetrics
from monitoring.dbmetrics.postgresql import PostgresMetrics
from monitoring.dbmetrics.sqlite import SqliteMetrics

# Guard dialect -> the metrics that read such a database.
METRICS: dict[str, Callable[[], DatabaseMetrics]] = {
    "postgresql": PostgresMetrics,
    "sqlite": SqliteMetrics,
}


def metrics_for(connection: Any) -> DatabaseMetrics:
    """The metrics reader for the database `connection` uses."""
    dialect = project_features(connection).guard_dialect
    try:
        factory = METRICS[dialect]
    except KeyError:
        raise NotImplementedError(f"no database metrics for {dialect!r} databases") from None
    return factory()


__all__ = [
    "METRICS",
    "DatabaseFigures",
    "DatabaseMetrics",
    "PostgresMetrics",
    "SqliteMetrics",
    "metrics_for",
]
