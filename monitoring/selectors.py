"""Reads of the monitoring app's metrics (the API, the admin and the thresholds)."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from monitoring.models import (
    DailyStatistic,
    DailyStorage,
    DatabaseSnapshot,
    RequestBucket,
    SlowQuery,
    SlowRequest,
    TaskBucket,
    Threshold,
)
from monitoring.trend import slope_per_day


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


def daily_storage_list() -> QuerySet[DailyStorage]:
    return DailyStorage.objects.order_by("-day", "table")


# A snapshot older than this says nothing about now (the snapshots come every 5 minutes).
FRESH = timedelta(minutes=30)
# The disk forecast's trend: the snapshots of the last week, spanning at least six hours.
DISK_TREND = timedelta(days=7)
DISK_TREND_SPAN = timedelta(hours=6)
NEVER_FULL_DAYS = 36_500.0


def fresh_snapshot(now: datetime) -> DatabaseSnapshot | None:
    """The newest snapshot taken in the FRESH minutes up to `now`."""
    return (
        DatabaseSnapshot.objects.filter(taken_at__lte=now, taken_at__gte=now - FRESH)
        .order_by("-taken_at", "-pk")
        .first()
    )


def database_free_bytes(snapshot: DatabaseSnapshot) -> float | None:
    """Free bytes on the database's volume in `snapshot` (None when not on this host)."""
    for volume in snapshot.host.get("volumes", []):
        if "database" in volume.get("roles", []) and volume.get("free_bytes") is not None:
            return float(volume["free_bytes"])
    return None


def days_until_disk_full(now: datetime) -> float | None:
    """Free bytes on the database volume over the last week, fitted to a line (least squares):
    at that slope, the days until none is left. NEVER_FULL_DAYS when it is not shrinking; None
    without snapshots spanning DISK_TREND_SPAN."""
    points = [
        (snapshot.taken_at.timestamp() / 86400, free)
        for snapshot in DatabaseSnapshot.objects.filter(
            taken_at__lte=now, taken_at__gte=now - DISK_TREND
        )
        .only("taken_at", "host")  # a week of snapshots, every minute: not their `figures`
        .order_by("taken_at")
        if (free := database_free_bytes(snapshot)) is not None
    ]
    if len(points) < 2 or (points[-1][0] - points[0][0]) * 86400 < DISK_TREND_SPAN.total_seconds():
        return None
    slope = slope_per_day(points)  # bytes per day
    if slope is None or slope >= 0:
        return NEVER_FULL_DAYS
    return min(points[-1][1] / -slope, NEVER_FULL_DAYS)


@dataclass
class Growth:
    """One table's (or the database's, `table` blank) size and how it grows: the newest day's
    size and growth, and the least-squares slope over the days looked at (bytes per day)."""

    table: str
    day: date
    bytes: int
    growth_bytes: int | None
    rows: int | None
    bytes_per_day: float | None
    days: int


@dataclass
class StorageTrend:
    """The database's and its largest tables' growth over `days` days up to `until`, and the
    database volume's free space and forecast (from the snapshots)."""

    until: date
    days: int
    database: Growth | None
    tables: list[Growth] = field(default_factory=list)
    disk_free_bytes: float | None = None
    disk_free_percent: float | None = None
    days_until_disk_full: float | None = None


TREND_DAYS = 28


def storage_trend(*, days: int = TREND_DAYS, now: datetime | None = None) -> StorageTrend:
    """Growth per table and for the database over the last `days` days of daily storage rows
    up to today (each line from its last break: a day without a growth figure), largest first,
    the tables of the newest day only; with the disk's free space and days until it is full."""
    now = now or timezone.now()
    until = now.date()
    history: dict[str, list[DailyStorage]] = {}
    for row in DailyStorage.objects.filter(
        day__gt=until - timedelta(days=days), day__lte=until
    ).order_by("day"):
        history.setdefault(row.table, []).append(row)
    trends = []
    for table, rows in history.items():
        # A day without a growth figure is a break (the first day, a gap in the snapshots, an
        # engine switch, a table back among the largest): the line starts there.
        breaks = [i for i, r in enumerate(rows) if r.growth_bytes is None]
        series = rows[breaks[-1] :] if breaks else rows
        newest = series[-1]
        trends.append(
            Growth(
                table=table,
                day=newest.day,
                bytes=newest.bytes,
                growth_bytes=newest.growth_bytes,
                rows=newest.rows,
                bytes_per_day=slope_per_day([(r.day.toordinal(), r.bytes) for r in series]),
                days=len(series),
            )
        )
    trends.sort(key=lambda g: (-g.bytes, g.table))
    database = next((g for g in trends if not g.table), None)
    newest_day = max((g.day for g in trends), default=None)
    latest = fresh_snapshot(now)
    return StorageTrend(
        until=until,
        days=days,
        database=database,
        # Tables of the newest day only: one dropped, or no longer among the largest, is gone.
        tables=[g for g in trends if g.table and g.day == newest_day],
        disk_free_bytes=database_free_bytes(latest) if latest else None,
        disk_free_percent=(
            100.0 * latest.disk_free_ratio
            if latest is not None and latest.disk_free_ratio is not None
            else None
        ),
        days_until_disk_full=days_until_disk_full(now),
    )
