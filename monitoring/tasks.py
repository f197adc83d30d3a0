"""django-q2 jobs of the monitoring app: thin, safe to run twice."""

from dataclasses import asdict
from datetime import date, timedelta

from django.utils import timezone

from monitoring.services import (
    daily_stats_compute,
    database_snapshot_take,
    error_log_purge,
    metrics_purge,
    thresholds_evaluate,
)


def purge_error_log() -> int:
    return error_log_purge()


def daily_stats(day: str | None = None) -> int:
    """Yesterday's statistics (UTC), or those of `day` (YYYY-MM-DD); how many rows."""
    when = date.fromisoformat(day) if day else timezone.now().date() - timedelta(days=1)
    return len(daily_stats_compute(when))


def purge_metrics() -> dict[str, int]:
    return asdict(metrics_purge())


def evaluate_thresholds() -> list[str]:
    return thresholds_evaluate()


def take_database_snapshot() -> int:
    """Store a database and host snapshot; its id (a second run stores a second snapshot)."""
    return database_snapshot_take().pk
