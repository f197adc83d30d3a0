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
    DailyStorage,
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


# A day's growth is measured from the last snapshot before it, when one is this recent.
GROWTH_BASELINE = timedelta(hours=36)


MAX_BIGINT = 2**63 - 1


def _count(value: Any) -> int | None:
    """A size or row count from a snapshot's JSON: a whole number a bigint holds, else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BIGINT:
        return None
    return value


def _tables(snapshot: DatabaseSnapshot) -> dict[str, tuple[int, int | None]]:
    """The snapshot's largest tables by name (cut to the column's 200 characters; the first of
    a repeated name counts): their size and live rows. Entries that are not a named table with
    a size are skipped: the JSON is the engine's, and one odd entry must not stop the day."""
    figures = snapshot.figures if isinstance(snapshot.figures, dict) else {}
    listed = figures.get("largest_tables")
    found: dict[str, tuple[int, int | None]] = {}  # name: (bytes, live rows)
    for entry in listed if isinstance(listed, list) else []:
        if not isinstance(entry, dict):
            continue
        name, size = entry.get("table"), _count(entry.get("total_bytes"))
        if not isinstance(name, str) or not name.strip() or size is None:
            continue
        found.setdefault(name[:200], (size, _count(entry.get("live_rows"))))
    return found


def _live_rows(snapshot: DatabaseSnapshot) -> int | None:
    figures = snapshot.figures if isinstance(snapshot.figures, dict) else {}
    rows = figures.get("rows")
    return _count(rows.get("live")) if isinstance(rows, dict) else None


def _growth(now: int | None, before: int | None) -> int | None:
    return None if now is None or before is None else now - before


def daily_storage_compute(day: date) -> list[DailyStorage]:
    """The day's database size and its largest tables' (with indexes), from the day's last
    snapshot, and their growth since the last snapshot before the day; replaces any made
    before. A day without a snapshot keeps what was stored for it."""
    start, end = day_bounds(day)
    last = (
        DatabaseSnapshot.objects.filter(taken_at__gte=start, taken_at__lt=end)
        .order_by("-taken_at", "-pk")
        .first()
    )
    if last is None:
        # No snapshot that day (or no longer: purged by age): what was stored stays.
        return list(DailyStorage.objects.filter(day=day).order_by("table"))
    rows: list[DailyStorage] = []
    before = (
        DatabaseSnapshot.objects.filter(
            taken_at__lt=start, taken_at__gte=start - GROWTH_BASELINE, engine=last.engine
        )
        .order_by("-taken_at", "-pk")
        .first()
    )
    rows.append(
        DailyStorage(
            day=day,
            table="",
            bytes=last.database_bytes,
            growth_bytes=_growth(last.database_bytes, before.database_bytes if before else None),
            rows=_live_rows(last),
        )
    )
    earlier = _tables(before) if before else {}
    for name, (size, live) in sorted(_tables(last).items()):
        previous = earlier.get(name)
        rows.append(
            DailyStorage(
                day=day,
                table=name,
                bytes=size,
                growth_bytes=_growth(size, previous[0] if previous else None),
                rows=live,
            )
        )
    with transaction.atomic():
        DailyStorage.objects.filter(day=day).delete()
        DailyStorage.objects.bulk_create(rows)
    return rows


def daily_stats_compute(day: date) -> list[DailyStatistic]:
    """The day's statistics per route and method and per task function, replacing any made
    before (running it twice gives the same rows). The day's storage figures are made with
    them (daily_storage_compute)."""
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
    purged = start < timezone.now() - timedelta(days=settings.MONITORING_RAW_RETENTION_DAYS)
    if not rows and purged:
        # The day's minute buckets are gone by age: the statistics made from them stay.
        rows = list(DailyStatistic.objects.filter(day=day).order_by("kind", "name", "method"))
    else:
        with transaction.atomic():
            DailyStatistic.objects.filter(day=day).delete()
            DailyStatistic.objects.bulk_create(rows)
    daily_storage_compute(day)  # its own transaction: the statistics stand whatever it meets
    return rows


@dataclass
class Purged:
    request_buckets: int
    task_buckets: int
    daily_statistics: int
    daily_storage: int = 0
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
    storage, _ = DailyStorage.objects.filter(day__lt=daily_before).delete()
    slow_requests, _ = SlowRequest.objects.filter(at__lt=raw_before).delete()
    slow_queries, _ = SlowQuery.objects.filter(at__lt=raw_before).delete()
    snapshots, _ = DatabaseSnapshot.objects.filter(taken_at__lt=raw_before).delete()
    return Purged(
        snapshots=snapshots,
        request_buckets=requests,
        task_buckets=tasks,
        daily_statistics=daily,
        daily_storage=storage,
        slow_requests=slow_requests,
        slow_queries=slow_queries,
    )
