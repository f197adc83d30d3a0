"""Monitoring admin: the error log (read-only; resolve, ignore and reopen go through the
services), the metrics' tables and the database snapshots (read-only), and the thresholds
(admins edit them through the services, audited)."""

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html

from config import dashboards
from config.admin_helpers import ReadOnlyAdminMixin
from monitoring import selectors, services
from monitoring.dashboard import DASHBOARD
from monitoring.histogram import percentile
from monitoring.models import (
    DailyStatistic,
    DailyStorage,
    DatabaseSnapshot,
    ErrorEvent,
    ErrorGroup,
    RequestBucket,
    SlowQuery,
    SlowRequest,
    TaskBucket,
    Threshold,
)
from monitoring.templatetags.monitoring_admin import signed_size

RECENT_EVENTS = 20
EVENT_FIELDS = (
    "occurred_at",
    "source",
    "request_id",
    "user_repr",
    "route",
    "method",
    "task_name",
    "operation_name",
    "message",
)


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RecentEventInline(ReadOnlyMixin, admin.TabularInline):
    """The group's newest events (only those: a busy group has thousands)."""

    model = ErrorEvent
    fields = EVENT_FIELDS
    readonly_fields = EVENT_FIELDS
    show_change_link = True
    extra = 0
    verbose_name_plural = f"Last {RECENT_EVENTS} events"

    def get_queryset(self, request):
        # The inline formset filters this by group afterwards, and a sliced queryset cannot be
        # filtered: keep the slice inside a subquery.
        qs = super().get_queryset(request)
        object_id = (
            request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        )
        if object_id is None:
            return qs.none()
        newest = (
            ErrorEvent.objects.filter(group_id=object_id)
            .order_by("-occurred_at", "-pk")
            .values("pk")[:RECENT_EVENTS]
        )
        return qs.filter(pk__in=newest).order_by("-occurred_at", "-pk")


GROUP_FIELDS = (
    "exception_type",
    "message",
    "culprit",
    "status",
    "count",
    "first_seen",
    "last_seen",
    "regressed_at",
    "resolved_at",
    "resolved_by",
    "last_alerted_at",
    "fingerprint",
)


@admin.register(ErrorGroup)
class ErrorGroupAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "exception_type",
        "short_message",
        "culprit",
        "status",
        "count",
        "first_seen",
        "last_seen",
    ]
    list_filter = ["status", "exception_type"]
    search_fields = ["exception_type", "message", "culprit", "fingerprint"]
    ordering = ["-last_seen"]
    date_hierarchy = "last_seen"
    fields = GROUP_FIELDS
    readonly_fields = GROUP_FIELDS
    list_select_related = False
    inlines = [RecentEventInline]
    actions = ["resolve_groups", "ignore_groups", "reopen_groups"]

    @admin.display(description="Message", ordering="message")
    def short_message(self, group: ErrorGroup) -> str:
        return group.message if len(group.message) <= 120 else group.message[:117] + "..."

    def has_triage_permission(self, request) -> bool:
        return request.user.has_perm("monitoring.change_errorgroup")

    def _apply(self, request, queryset, service, verb: str) -> None:
        done = 0
        for group in queryset.order_by("pk"):
            service(group=group, actor=request.user)
            done += 1
        self.message_user(request, f"{done} error group(s) {verb}.")

    @admin.action(description="Resolve selected error groups", permissions=["triage"])
    def resolve_groups(self, request, queryset):
        self._apply(request, queryset, services.error_group_resolve, "resolved")

    @admin.action(description="Ignore selected error groups", permissions=["triage"])
    def ignore_groups(self, request, queryset):
        self._apply(request, queryset, services.error_group_ignore, "ignored")

    @admin.action(description="Reopen selected error groups", permissions=["triage"])
    def reopen_groups(self, request, queryset):
        self._apply(request, queryset, services.error_group_reopen, "reopened")


EVENT_DETAIL_FIELDS = (
    "group",
    "occurred_at",
    "source",
    "request_id",
    "user_repr",
    "user",
    "route",
    "method",
    "task_name",
    "operation_name",
    "message",
    "payload",
    "traceback_display",
)


@admin.register(ErrorEvent)
class ErrorEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "occurred_at",
        "group",
        "source",
        "route",
        "task_name",
        "operation_name",
        "user_repr",
        "request_id",
    ]
    list_filter = ["source"]
    search_fields = ["=request_id", "route", "task_name", "operation_name", "user_repr"]
    list_select_related = ["group"]
    date_hierarchy = "occurred_at"
    fields = EVENT_DETAIL_FIELDS
    readonly_fields = EVENT_DETAIL_FIELDS

    @admin.display(description="Traceback")
    def traceback_display(self, event: ErrorEvent) -> str:
        return format_html("<pre class='lg-pre'>{}</pre>", event.traceback)


# --- metrics: the tables behind the dashboards to come -----------------------------------------


@admin.register(RequestBucket)
class RequestBucketAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Minute buckets of requests (newest first); the percentiles are read from each row's
    histogram."""

    list_display = ["minute", "method", "route", "status_class", "count", "mean_ms", "p95_ms"]
    list_filter = ["status_class", "method"]
    search_fields = ["route"]
    date_hierarchy = "minute"
    show_full_result_count = False  # a year of minutes: no COUNT(*) of it all on each page

    @admin.display(description="Mean (ms)")
    def mean_ms(self, bucket: RequestBucket) -> str:
        return f"{bucket.duration_sum / bucket.count * 1000:.1f}" if bucket.count else ""

    @admin.display(description="p95 (ms)")
    def p95_ms(self, bucket: RequestBucket) -> str:
        p95 = percentile(bucket.histogram, 0.95)
        return "" if p95 is None else f"{p95 * 1000:.1f}"


@admin.register(TaskBucket)
class TaskBucketAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["minute", "func", "outcome", "count", "run_seconds_sum", "run_seconds_max"]
    list_filter = ["outcome"]
    search_fields = ["func"]
    date_hierarchy = "minute"
    show_full_result_count = False


@admin.register(DailyStatistic)
class DailyStatisticAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Per day, route and task; sort by p95 for the slowest routes."""

    list_display = ["day", "kind", "method", "name", "count", "errors", "p50", "p95", "p99"]
    list_filter = ["kind", "method"]
    search_fields = ["name"]
    date_hierarchy = "day"


@admin.register(DailyStorage)
class DailyStorageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The database's and its largest tables' size per day, with the trend above the list."""

    change_list_template = "admin/monitoring/dailystorage/change_list.html"
    list_display = ["day", "table_name", "size", "growth", "rows"]
    search_fields = ["table"]
    date_hierarchy = "day"

    @admin.display(description="Table", ordering="table")
    def table_name(self, row: DailyStorage) -> str:
        return row.table or "(whole database)"

    @admin.display(description="Size", ordering="bytes")
    def size(self, row: DailyStorage) -> str:
        return filesizeformat(row.bytes)

    @admin.display(description="Growth that day", ordering="growth_bytes")
    def growth(self, row: DailyStorage) -> str:
        return signed_size(row.growth_bytes)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        trend = selectors.storage_trend()
        rows = [trend.database, *trend.tables] if trend.database else trend.tables
        extra_context = {**(extra_context or {}), "trend": trend, "trend_rows": rows}
        return super().changelist_view(request, extra_context)


@admin.register(Threshold)
class ThresholdAdmin(admin.ModelAdmin):
    """Thresholds as data: admins add, change and delete them (audited, through the
    services); the evaluation state is the evaluator's alone."""

    list_display = [
        "name",
        "metric",
        "comparison",
        "value",
        "clear_value",
        "for_minutes",
        "severity",
        "enabled",
        "firing",
        "last_value",
    ]
    list_filter = ["enabled", "firing", "severity", "metric"]
    readonly_fields = ["breaching_since", "firing", "last_value", "last_evaluated_at"]

    def save_model(self, request: HttpRequest, obj: Threshold, form: Any, change: bool) -> None:
        services.threshold_save(threshold=obj, actor=request.user, created=not change)

    def delete_model(self, request: HttpRequest, obj: Threshold) -> None:
        services.threshold_delete(threshold=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for threshold in queryset:
            services.threshold_delete(threshold=threshold, actor=request.user)


@admin.register(SlowRequest)
class SlowRequestAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["at", "method", "route", "status", "seconds", "queries", "query_seconds"]
    list_filter = ["method"]
    search_fields = ["route", "request_id"]
    date_hierarchy = "at"
    show_full_result_count = False


@admin.register(SlowQuery)
class SlowQueryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["at", "route", "seconds", "sql"]
    search_fields = ["route", "sql", "request_id"]
    date_hierarchy = "at"
    show_full_result_count = False


SNAPSHOT_FIELDS = (
    "taken_at",
    "engine",
    "database_bytes",
    "connections_total",
    "cache_hit_ratio",
    "deadlocks",
    "disk_free_ratio",
    "figures_display",
    "host_display",
)


def _pretty(value: object) -> str:
    return format_html("<pre class='lg-pre'>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


@admin.register(DatabaseSnapshot)
class DatabaseSnapshotAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "taken_at",
        "engine",
        "size",
        "connections_total",
        "cache_hit",
        "disk_free",
    ]
    list_filter = ["engine"]
    ordering = ["-taken_at"]
    date_hierarchy = "taken_at"
    fields = SNAPSHOT_FIELDS
    readonly_fields = SNAPSHOT_FIELDS
    show_full_result_count = False

    @admin.display(description="Size", ordering="database_bytes")
    def size(self, snapshot: DatabaseSnapshot) -> str:
        return filesizeformat(snapshot.database_bytes)

    @admin.display(description="Cache hit ratio", ordering="cache_hit_ratio")
    def cache_hit(self, snapshot: DatabaseSnapshot) -> str:
        ratio = snapshot.cache_hit_ratio
        return "-" if ratio is None else f"{ratio:.2%}"

    @admin.display(description="Disk free", ordering="disk_free_ratio")
    def disk_free(self, snapshot: DatabaseSnapshot) -> str:
        ratio = snapshot.disk_free_ratio
        return "-" if ratio is None else f"{ratio:.1%}"

    @admin.display(description="Figures")
    def figures_display(self, snapshot: DatabaseSnapshot) -> str:
        return _pretty(snapshot.figures)

    @admin.display(description="Host")
    def host_display(self, snapshot: DatabaseSnapshot) -> str:
        return _pretty(snapshot.host)


dashboards.register(DASHBOARD)
