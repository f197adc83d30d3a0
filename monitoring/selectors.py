"""Reads of the monitoring app's metrics (the API and the admin)."""

from datetime import datetime

from django.db.models import QuerySet

from monitoring.models import (
    DailyStatistic,
    DatabaseSnapshot,
    RequestBucket,
    SlowQuery,
    SlowRequest,
    TaskBucket,
    Threshold,
)


def request_buckets_list() -> QuerySet[RequestBucket]:
    return RequestBucket.objects.order_by("-minute", "route", "method", "status_class")


def task_buckets_list() -> QuerySet[TaskBucket]:
    return TaskBucket.objects.order_by("-minute", "func", "outcome")


def daily_statistics_list() -> QuerySet[DailyStatistic]:
    return DailyStatistic.objects.order_by("-day", "kind", "name", "method")


def thresholds_list() -> QuerySet[Threshold]:
    return Threshold.objects.order_by("name")


def slow_requests_list() -> QuerySet[SlowRequest]:
    return SlowRequest.objects.order_by("-at", "-id")


def slow_queries_list() -> QuerySet[SlowQuery]:
    return SlowQuery.objects.order_by("-at", "-id")


def database_snapshot_list(
    *, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[DatabaseSnapshot]:
    """Snapshots taken at or after `since` and before `until` (either open), oldest first."""
    snapshots = DatabaseSnapshot.objects.all()
    if since is not None:
        snapshots = snapshots.filter(taken_at__gte=since)
    if until is not None:
        snapshots = snapshots.filter(taken_at__lt=until)
    return snapshots.order_by("taken_at", "pk")


def database_snapshot_latest() -> DatabaseSnapshot | None:
    """The newest snapshot, or None before the first."""
    return DatabaseSnapshot.objects.order_by("-taken_at", "-pk").first()
