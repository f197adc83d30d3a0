"""Daily statistics from the minute buckets, and retention by age: minute buckets (and later
snapshots) for MONITORING_RAW_RETENTION_DAYS, daily statistics for
MONITORING_DAILY_RETENTION_DAYS. Days are UTC days."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

from monitoring.histogram import percentile
from monitoring.models import (
    DailyStatistic,
    DatabaseSnapshot,
    RequestBucket,
    SlowQuery,
    SlowRequest,
    TaskBucket,
)
from monitoring.services.metrics import SLOT_COLUMNS, slot_sums


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _statistic(
    day: date, kind: str, name: str, method: str, row: Mapping[str, Any]
) -> DailyStatistic:
    slots = [row[c] or 0 for c in SLOT_COLUMNS]
    return DailyStatistic(
        day=day,
        kind=kind,
        name=name,
        method=method,
        count=row["n"] or 0,
        errors=row["failed"] or 0,
        seconds_sum=row["total"] or 0.0,
        seconds_max=row["top"] or 0.0,
        p50=percentile(slots, 0.50),
        p95=percentile(slots, 0.95),
        p99=percentile(slots, 0.99),
        queries=row.get("queries") or 0,
        **dict(zip(SLOT_COLUMNS, slots, strict=True)),
    )


def daily_stats_compute(day: date) -> list[DailyStatistic]:
    """The day's statistics per route and method and per task function, replacing any made
    before (running it twice gives the same rows)."""
    start, end = day_bounds(day)
    requests = (
        RequestBucket.objects.filter(minute__gte=start, minute__lt=end)
        .values("route", "method")
        .annotate(
            n=Sum("count"),
            failed=Sum("count", filter=Q(status_class="5xx")),
            total=Sum("duration_sum"),
            top=Max("duration_max"),
            queries=Sum("queries"),
            **slot_sums(),
        )
        .order_by("route", "method")
    )
    tasks = (
        TaskBucket.objects.filter(minute__gte=start, minute__lt=end)
        .values("func")
        .annotate(
            n=Sum("count"),
            failed=Sum("count", filter=Q(outcome=TaskBucket.Outcome.FAILURE)),
            total=Sum("run_seconds_sum"),
            top=Max("run_seconds_max"),
            **slot_sums(),
        )
        .order_by("func")
    )
    rows = [
        _statistic(day, DailyStatistic.Kind.ROUTE, r["route"], r["method"], r) for r in requests
    ]
    rows += [_statistic(day, DailyStatistic.Kind.TASK, t["func"], "", t) for t in tasks]
    with transaction.atomic():
        DailyStatistic.objects.filter(day=day).delete()
        DailyStatistic.objects.bulk_create(rows)
    return rows


@dataclass
class Purged:
    request_buckets: int
    task_buckets: int
    daily_statistics: int
    slow_requests: int = 0
    slow_queries: int = 0
    snapshots: int = 0


def metrics_purge(*, now: datetime | None = None) -> Purged:
    """Delete minute buckets older than MONITORING_RAW_RETENTION_DAYS and daily statistics
    older than MONITORING_DAILY_RETENTION_DAYS."""
    now = now or timezone.now()
    raw_before = now - timedelta(days=settings.MONITORING_RAW_RETENTION_DAYS)
    daily_before = (now - timedelta(days=settings.MONITORING_DAILY_RETENTION_DAYS)).date()
    requests, _ = RequestBucket.objects.filter(minute__lt=raw_before).delete()
    tasks, _ = TaskBucket.objects.filter(minute__lt=raw_before).delete()
    daily, _ = DailyStatistic.objects.filter(day__lt=daily_before).delete()
    slow_requests, _ = SlowRequest.objects.filter(at__lt=raw_before).delete()
    slow_queries, _ = SlowQuery.objects.filter(at__lt=raw_before).delete()
    snapshots, _ = DatabaseSnapshot.objects.filter(taken_at__lt=raw_before).delete()
    return Purged(
        snapshots=snapshots,
        request_buckets=requests,
        task_buckets=tasks,
        daily_statistics=daily,
        slow_requests=slow_requests,
        slow_queries=slow_queries,
    )
