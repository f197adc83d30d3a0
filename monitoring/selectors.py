"""Reads of the monitoring app's metrics (the API, the admin and the thresholds)."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import F, Q, QuerySet, Sum, Value
from django.db.models.functions import TruncDay, TruncHour, TruncMinute
from django.utils import timezone

from monitoring.histogram import SLOTS, add, percentile
from monitoring.models import (
    DailyStatistic,
    DailyStorage,
    DatabaseSnapshot,
    ErrorGroup,
    ErrorStatus,
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


# --- the Performance dashboard ---------------------------------------------------------------
#
# Requests are summed per step in the database (a truncated time, the histogram columns added
# up) and the percentiles read in Python from the summed histograms: a few hundred rows at
# most come back, whatever the traffic. A range whose step is a day reads the daily
# statistics for the days they cover and the minute buckets only after the newest of them
# (today, and yesterday until daily_stats has run): the buckets may be purged sooner
# (MONITORING_RAW_RETENTION_DAYS) and a day's statistic is one row where its buckets are
# thousands.

HISTOGRAM = [f"h{index:02d}" for index in range(SLOTS)]


@dataclass(frozen=True)
class Figures:
    """Requests (or task runs) added up: how many, how many failed (5xx answers, failed
    runs), the seconds they took and their latency histogram (monitoring/histogram.py)."""

    count: int
    errors: int
    seconds: float
    slots: tuple[int, ...]

    @property
    def error_rate(self) -> float | None:
        """Failed, in percent of all; None without any."""
        return 100.0 * self.errors / self.count if self.count else None

    @property
    def mean(self) -> float | None:
        return self.seconds / self.count if self.count else None

    @property
    def p50(self) -> float | None:
        return percentile(self.slots, 0.50)

    @property
    def p95(self) -> float | None:
        return percentile(self.slots, 0.95)

    @property
    def p99(self) -> float | None:
        return percentile(self.slots, 0.99)


NO_FIGURES = Figures(0, 0, 0.0, (0,) * SLOTS)


def _figures(rows: Iterable[Mapping[str, Any]]) -> Figures:
    """Aggregated rows (n, failed, total and the histogram columns) added up."""
    count, errors, seconds, slots = 0, 0, 0.0, [0] * SLOTS
    for row in rows:
        count += int(row["n"] or 0)
        errors += int(row["failed"] or 0)
        seconds += float(row["total"] or 0.0)
        for index, column in enumerate(HISTOGRAM):
            slots[index] += int(row[column] or 0)
    return Figures(count, errors, seconds, tuple(slots))


def _histogram_sums() -> dict[str, Sum]:
    return {column: Sum(column) for column in HISTOGRAM}


def _request_sums() -> dict[str, Sum]:
    return {
        "n": Sum("count"),
        "failed": Sum("count", filter=Q(status_class="5xx")),
        "total": Sum("duration_sum"),
        **_histogram_sums(),
    }


def _task_sums() -> dict[str, Sum]:
    return {
        "n": Sum("count"),
        "failed": Sum("count", filter=Q(outcome=TaskBucket.Outcome.FAILURE)),
        "total": Sum("run_seconds_sum"),
        **_histogram_sums(),
    }


def _daily_sums() -> dict[str, Sum]:
    return {
        "n": Sum("count"),
        "failed": Sum("errors"),
        "total": Sum("seconds_sum"),
        **_histogram_sums(),
    }


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _floor(moment: datetime, step: timedelta) -> datetime:
    """`moment` down to a whole step since the epoch: 6-hour steps start at 0, 6, 12 and 18
    o'clock UTC, day steps at midnight UTC."""
    seconds = int(step.total_seconds())
    stamp = int(moment.timestamp())
    return datetime.fromtimestamp(stamp - stamp % seconds, tz=UTC)


def step_starts(*, span: timedelta, step: timedelta, now: datetime) -> list[datetime]:
    """The starts of the steps covering `span` up to `now`, oldest first (the last one is
    the step `now` is in)."""
    last = _floor(now, step)
    count = max(1, int(span / step))
    return [last - step * (count - 1 - index) for index in range(count)]


def _daily_until(kind: str, since: datetime, by_day: bool) -> date | None:
    """For day steps: the newest day at or after `since` with daily statistics of `kind`
    (read those, the minute buckets after it); None: read the minute buckets only."""
    if not by_day:
        return None
    newest: date | None = (
        DailyStatistic.objects.filter(kind=kind, day__gte=since.date())
        .order_by("-day")
        .values_list("day", flat=True)
        .first()
    )
    return newest


@dataclass(frozen=True)
class Step:
    start: datetime
    figures: Figures


def request_steps(*, span: timedelta, step: timedelta, now: datetime) -> list[Step]:
    """Requests per step over `span` up to `now`, every step present, oldest first. Two
    queries (three for day steps)."""
    starts = step_starts(span=span, step=step, now=now)
    by_day = step >= timedelta(days=1)
    daily_until = _daily_until(DailyStatistic.Kind.ROUTE, starts[0], by_day)
    rows: list[tuple[datetime, Mapping[str, Any]]] = []
    since = starts[0]
    if daily_until is not None:
        daily = (
            DailyStatistic.objects.filter(
                kind=DailyStatistic.Kind.ROUTE, day__gte=since.date(), day__lte=daily_until
            )
            .values("day")
            .annotate(**_daily_sums())
            .order_by("day")
        )
        rows += [(_midnight(r["day"]), r) for r in daily]
        since = _midnight(daily_until + timedelta(days=1))
    trunc = TruncDay if by_day else TruncHour if step >= timedelta(hours=1) else TruncMinute
    buckets = (
        RequestBucket.objects.filter(minute__gte=since, minute__lte=now)
        .annotate(at=trunc("minute", tzinfo=UTC))
        .values("at")
        .annotate(**_request_sums())
        .order_by("at")
    )
    rows += [(r["at"], r) for r in buckets]
    per_step: dict[datetime, list[Mapping[str, Any]]] = {start: [] for start in starts}
    for at, row in rows:
        per_step.get(_floor(at, step), []).append(row)
    return [Step(start, _figures(found)) for start, found in per_step.items()]


def steps_total(steps: Iterable[Step]) -> Figures:
    """The steps' figures added up (the percentiles are the whole range's)."""
    count, errors, seconds, slots = 0, 0, 0.0, [0] * SLOTS
    for s in steps:
        count += s.figures.count
        errors += s.figures.errors
        seconds += s.figures.seconds
        add(slots, s.figures.slots)
    return Figures(count, errors, seconds, tuple(slots))


@dataclass(frozen=True)
class Named:
    """A route (with its method) or a task function, and its figures over a range."""

    name: str
    method: str
    figures: Figures


# Routes and task functions read per range at most (they are URL pattern names and task
# functions, a few hundred at the very most; the busiest are kept).
NAMES_CAP = 500


def _named(
    *, kind: str, since: datetime, now: datetime, by_day: bool, limit: int, key: str
) -> list[Named]:
    """The routes' or task functions' figures since `since`, summed in the database; the
    `limit` slowest by p95 (then by time taken), most first."""
    task = kind == DailyStatistic.Kind.TASK
    found: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    daily_until = _daily_until(kind, since, by_day)
    if daily_until is not None:
        daily = (
            DailyStatistic.objects.filter(kind=kind, day__gte=since.date(), day__lte=daily_until)
            .values("name", "method")
            .annotate(**_daily_sums())
            .order_by(F("total").desc(), "name", "method")[:NAMES_CAP]
        )
        for row in daily:
            found.setdefault((row["name"], row["method"]), []).append(row)
        since = _midnight(daily_until + timedelta(days=1))
    # Task buckets are keyed by function alone; their method is blank like the statistics'.
    buckets: Iterable[Mapping[str, Any]] = (
        TaskBucket.objects.filter(minute__gte=since, minute__lte=now)
        .annotate(name=F("func"), method=Value(""))
        .values("name", "method")
        .annotate(**_task_sums())
        .order_by(F("total").desc(), "name")[:NAMES_CAP]
        if task
        else RequestBucket.objects.filter(minute__gte=since, minute__lte=now)
        .annotate(name=F("route"))
        .values("name", "method")
        .annotate(**_request_sums())
        .order_by(F("total").desc(), "name", "method")[:NAMES_CAP]
    )
    for bucket in buckets:
        found.setdefault((bucket["name"], bucket["method"]), []).append(bucket)
    named = [Named(name, method, _figures(rows)) for (name, method), rows in found.items()]
    if key == "count":
        named.sort(key=lambda n: (-n.figures.count, n.name, n.method))
    else:
        named.sort(key=lambda n: (-(n.figures.p95 or 0.0), -n.figures.seconds, n.name))
    return named[:limit]


def slow_routes(
    *, since: datetime, now: datetime, by_day: bool = False, limit: int = 10
) -> list[Named]:
    """The routes with the highest p95 latency since `since`, with their figures."""
    return _named(
        kind=DailyStatistic.Kind.ROUTE, since=since, now=now, by_day=by_day, limit=limit, key="p95"
    )


def busiest_tasks(
    *, since: datetime, now: datetime, by_day: bool = False, limit: int = 10
) -> list[Named]:
    """The task functions that ran most since `since`, with their figures."""
    return _named(
        kind=DailyStatistic.Kind.TASK, since=since, now=now, by_day=by_day, limit=limit, key="count"
    )


def request_figures(*, since: datetime, now: datetime) -> Figures:
    """All requests from `since` to `now`, added up in one query (the Overview's 24 hours)."""
    sums = RequestBucket.objects.filter(minute__gte=since, minute__lte=now).aggregate(
        **_request_sums()
    )
    return _figures([sums]) if sums["n"] else NO_FIGURES


def slowest_queries(*, since: datetime, limit: int = 10) -> list[SlowQuery]:
    """The `limit` slowest queries recorded since `since`, slowest first."""
    return list(SlowQuery.objects.filter(at__gte=since).order_by("-seconds", "-id")[:limit])


def slowest_requests(*, since: datetime, limit: int = 10) -> list[SlowRequest]:
    """The `limit` slowest requests recorded since `since`, slowest first."""
    return list(SlowRequest.objects.filter(at__gte=since).order_by("-seconds", "-id")[:limit])


def database_sizes(*, days: int, today: date) -> list[tuple[date, int]]:
    """The database's size per day (the daily storage rows), the last `days` days, oldest
    first."""
    return [
        (row["day"], row["bytes"])
        for row in DailyStorage.objects.filter(
            table="", day__gt=today - timedelta(days=days), day__lte=today
        )
        .order_by("day")
        .values("day", "bytes")
    ]


def thresholds_for(metrics: Iterable[str]) -> list[Threshold]:
    """The enabled thresholds on `metrics`, by name (one query)."""
    return list(Threshold.objects.filter(metric__in=list(metrics), enabled=True).order_by("name"))


@dataclass(frozen=True)
class ErrorTrouble:
    """Unresolved error groups first seen or regressed since a moment: how many, the newest."""

    count: int
    newest: ErrorGroup | None


def error_groups_new_or_regressed(*, since: datetime) -> ErrorTrouble:
    """Unresolved groups that are new or regressed since `since` (two queries)."""
    groups = ErrorGroup.objects.filter(
        Q(first_seen__gte=since) | Q(regressed_at__gte=since), status=ErrorStatus.UNRESOLVED
    )
    return ErrorTrouble(
        count=groups.count(),
        newest=groups.order_by("-last_seen", "-pk").first(),
    )
