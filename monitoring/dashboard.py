"""The Performance dashboard (`/admin/dashboards/performance/`) and its Overview tiles.

Read-only: latency percentiles, throughput and error rate per step over a chosen range, the
slowest routes, the task queue, the database's size and forecast, the slowest queries and
requests. Each section shows only to a role that may view its table (config/roles.py); the
page itself needs `monitoring.view_requestbucket`. The reads are monitoring.selectors'.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils import timezone

from config import dashboards
from config.charts import Chart, bar_chart, line_chart
from monitoring import selectors
from monitoring.models import Threshold
from monitoring.taskmetrics import queue_figures
from monitoring.trend import slope_per_day

KEY = "performance"
PERMISSION = "monitoring.view_requestbucket"
RANGE_KEYS = ("hour", "day", "week", "month")
# The database's size is a slow line: its chart shows these days whatever the range.
DATABASE_DAYS = 90
# The growth figure on the Overview: the least-squares slope over these days.
GROWTH_DAYS = 28
TOP = 10
OVERVIEW_SPAN = timedelta(hours=24)

LABELS = {"hour": "%H:%M", "day": "%H:00", "week": "%d %b %H:00", "month": "%d %b"}
STEP_WORDS = {"hour": "minute", "day": "hour", "week": "6 hours", "month": "day"}

LATENCY = Threshold.Metric.LATENCY_P95_MS
ERROR_RATE = Threshold.Metric.ERROR_RATE_PERCENT
DISK = (Threshold.Metric.DISK_FREE_PERCENT, Threshold.Metric.DAYS_UNTIL_DISK_FULL)


def visible(user: Any) -> bool:
    return bool(user.has_perm(PERMISSION))


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"


def _ms_value(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def _per_minute(count: int, span: timedelta) -> str:
    return f"{count / (span.total_seconds() / 60):,.1f}/min"


def _days(value: float | None) -> str:
    """When the disk fills at the current trend, as the end of "the disk fills ..."."""
    if value is None:
        return "(not enough snapshots yet)"
    if value >= selectors.NEVER_FULL_DAYS:
        return "never at the current trend"
    return f"in {value:,.0f} days"


# --- the page ----------------------------------------------------------------------------------


def _request_charts(steps: Sequence[selectors.Step], range_key: str) -> list[Chart]:
    labels = [s.start.strftime(LABELS[range_key]) for s in steps]
    word = STEP_WORDS[range_key]
    return [
        line_chart(
            title="Latency percentiles",
            x_labels=labels,
            series={
                "p50": [_ms_value(s.figures.p50) for s in steps],
                "p95": [_ms_value(s.figures.p95) for s in steps],
                "p99": [_ms_value(s.figures.p99) for s in steps],
            },
            y_title="ms",
        ),
        bar_chart(
            title=f"Requests per {word}",
            x_labels=labels,
            series={"Requests": [s.figures.count for s in steps]},
            y_title="requests",
        ),
        line_chart(
            title=f"Error rate (5xx answers) per {word}",
            x_labels=labels,
            series={"5xx %": [s.figures.error_rate for s in steps]},
            y_title="%",
        ),
    ]


def _database_context(now: datetime) -> dict[str, Any]:
    sizes = selectors.database_sizes(days=DATABASE_DAYS, today=now.date())
    chart = line_chart(
        title=f"Database size, last {DATABASE_DAYS} days",
        x_labels=[day.strftime("%d %b") for day, _ in sizes],
        # MB as filesizeformat counts them (1024 * 1024 bytes), to agree with the text.
        series={"Size (MB)": [round(size / 1024**2, 1) for _, size in sizes]},
        y_title="MB",
    )
    trend = selectors.storage_trend(now=now)
    return {
        "database_chart": chart if sizes else None,
        "trend": trend,
        "days_until_full": _days(trend.days_until_disk_full),
    }


def performance_dashboard(request: HttpRequest) -> TemplateResponse:
    if not visible(request.user):
        raise PermissionDenied
    user = request.user
    chosen = dashboards.selected_range(request, default="day", allowed=RANGE_KEYS)
    now = timezone.now()
    by_day = chosen.step >= timedelta(days=1)
    steps = selectors.request_steps(span=chosen.span, step=chosen.step, now=now)
    since = steps[0].start
    total = selectors.steps_total(steps)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        **dashboards.nav_context(request, KEY),
        **dashboards.range_context(request, chosen, RANGE_KEYS),
        "title": "Performance",
        "since": since,
        "total": total,
        "throughput": _per_minute(total.count, now - since),
        "charts": _request_charts(steps, chosen.key),
        "slow_routes": selectors.slow_routes(since=since, now=now, by_day=by_day, limit=TOP),
        "by_day": by_day,
    }
    if user.has_perm("monitoring.view_threshold"):
        context["thresholds"] = selectors.thresholds_for([LATENCY, ERROR_RATE, *DISK])
    if user.has_perm("monitoring.view_taskbucket"):
        context["queue"] = queue_figures()
        context["tasks"] = selectors.busiest_tasks(since=since, now=now, by_day=by_day, limit=TOP)
    if user.has_perm("monitoring.view_dailystorage"):
        context["database"] = _database_context(now)
    if user.has_perm("monitoring.view_slowquery"):
        context["slow_queries"] = selectors.slowest_queries(since=since, limit=TOP)
    if user.has_perm("monitoring.view_slowrequest"):
        context["slow_requests"] = selectors.slowest_requests(since=since, limit=TOP)
    if user.has_perm("monitoring.view_errorgroup"):
        context["errors"] = selectors.error_groups_new_or_regressed(since=since)
        context["errors_url"] = _error_groups_url()
    return TemplateResponse(request, "admin/monitoring/dashboard.html", context)


# --- the Overview's tiles ------------------------------------------------------------------------


def _dashboard_url(range_key: str = "") -> str:
    url = reverse("admin:dashboard_performance")
    return f"{url}?range={range_key}" if range_key else url


def _error_groups_url() -> str:
    return reverse("admin:monitoring_errorgroup_changelist") + "?status__exact=unresolved"


def _firing(
    thresholds: Sequence[Threshold], metrics: Sequence[str]
) -> tuple[dashboards.Status, str]:
    """("bad" for an error or critical threshold firing, "warn" for a warning one, else "ok")
    and what is firing."""
    firing = [t for t in thresholds if t.metric in metrics and t.firing]
    if not firing:
        return "ok", ""
    status: dashboards.Status = "bad" if any(t.severity != "warning" for t in firing) else "warn"
    said = ", ".join(
        f"{t.name} firing ({t.last_value:.4g} {t.comparison} {t.value:g})"
        if t.last_value is not None
        else f"{t.name} firing"
        for t in firing
    )
    return status, said


def _worst(*statuses: dashboards.Status) -> dashboards.Status:
    if "bad" in statuses:
        return "bad"
    return "warn" if "warn" in statuses else "ok"


def _requests_tile(thresholds: Sequence[Threshold], now: datetime) -> dashboards.Tile:
    figures = selectors.request_figures(since=now - OVERVIEW_SPAN, now=now)
    latency, latency_said = _firing(thresholds, [LATENCY])
    errors, errors_said = _firing(thresholds, [ERROR_RATE])
    status = _worst(latency, errors)
    if figures.count == 0 and status == "ok":
        status, summary = "none", "No requests recorded in the last 24 hours."
    elif status != "ok":
        summary = "; ".join(s for s in (latency_said, errors_said) if s) + "."
    else:
        summary = (
            f"p95 {_ms(figures.p95)}, {_per_minute(figures.count, OVERVIEW_SPAN)}, "
            f"{_percent(figures.error_rate)} errors over 24 hours."
        )
    return dashboards.Tile(
        key="performance-requests",
        title="Requests, last 24 hours",
        hint=(
            "open Performance, find the slow or failing routes and queries for the range; the "
            "threshold's runbook entry is in docs/runbooks.md."
        ),
        status=status,
        summary=summary,
        url=_dashboard_url("day"),
        rows=[
            ("p95 latency", _ms(figures.p95)),
            ("Throughput", _per_minute(figures.count, OVERVIEW_SPAN)),
            ("Requests", f"{figures.count:,}"),
            ("Error rate (5xx)", _percent(figures.error_rate)),
        ],
    )


def _errors_tile(now: datetime) -> dashboards.Tile:
    trouble = selectors.error_groups_new_or_regressed(since=now - OVERVIEW_SPAN)
    newest = trouble.newest
    rows = [("New or regressed, unresolved", str(trouble.count))]
    if newest is not None:
        rows.append(("Newest", f"{newest.exception_type}: {newest.message[:80]}"))
        rows.append(("Last seen", newest.last_seen.strftime("%Y-%m-%d %H:%M UTC")))
    return dashboards.Tile(
        key="performance-errors",
        title="New and regressed errors",
        hint=(
            "open the error group in the error log, read its traceback, fix it and mark the group"
            " resolved."
        ),
        status="bad" if trouble.count else "ok",
        summary=(
            f"{trouble.count} unresolved error group(s) new or regressed in the last 24 hours."
            if trouble.count
            else "No new or regressed error groups in the last 24 hours."
        ),
        url=_error_groups_url(),
        rows=rows,
    )


def _database_tile(thresholds: Sequence[Threshold], now: datetime) -> dashboards.Tile:
    sizes = selectors.database_sizes(days=GROWTH_DAYS, today=now.date())
    if not sizes:
        return dashboards.Tile(
            key="performance-database",
            title="Database growth",
            hint=(
                "see which tables grow on Performance (Daily storage per table) and free or add "
                "disk before the forecast day."
            ),
            status="none",
            summary="No daily storage figures yet: daily_stats makes them from the snapshots.",
            url=_dashboard_url(),
        )
    per_day = slope_per_day([(day.toordinal(), size) for day, size in sizes])
    until_full = selectors.days_until_disk_full(now)
    status, said = _firing(thresholds, DISK)
    growth = "-" if per_day is None else f"{filesizeformat(abs(per_day))} a day"
    if per_day is not None and per_day < 0:
        growth = f"shrinking {growth}"
    return dashboards.Tile(
        key="performance-database",
        title="Database growth",
        hint=(
            "see which tables grow on Performance (Daily storage per table) and free or add disk "
            "before the forecast day."
        ),
        status=status,
        summary=(
            said + "."
            if said
            else f"{filesizeformat(sizes[-1][1])}, growing {growth}; the disk fills "
            f"{_days(until_full)}."
        ),
        url=_dashboard_url(),
        rows=[
            ("Size", filesizeformat(sizes[-1][1])),
            (f"Growth (last {GROWTH_DAYS} days)", growth),
            ("The disk fills", _days(until_full)),
        ],
    )


def overview_tiles(request: HttpRequest) -> list[dashboards.Tile]:
    """Requests over 24 hours, new and regressed errors, the database's growth: each for a
    role that may view its tables."""
    user = request.user
    now = timezone.now()
    # The page shows the thresholds only to their readers: so do the tiles.
    thresholds = (
        selectors.thresholds_for([LATENCY, ERROR_RATE, *DISK])
        if user.has_perm("monitoring.view_threshold")
        else []
    )
    tiles = [_requests_tile(thresholds, now)]
    if user.has_perm("monitoring.view_errorgroup"):
        tiles.append(_errors_tile(now))
    if user.has_perm("monitoring.view_dailystorage"):
        tiles.append(_database_tile(thresholds, now))
    return tiles


def urls(site: admin.AdminSite) -> list[URLPattern | URLResolver]:
    return [path("", site.admin_view(performance_dashboard), name="dashboard_performance")]


DASHBOARD = dashboards.Dashboard(
    key=KEY,
    title="Performance",
    order=60,
    visible=visible,
    urls=urls,
    tiles=overview_tiles,
)
