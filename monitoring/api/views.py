import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from config import filters
from monitoring import selectors
from monitoring.api.serializers import (
    DailyStatisticSerializer,
    DailyStorageSerializer,
    DatabaseSnapshotSerializer,
    RequestBucketSerializer,
    SlowQuerySerializer,
    SlowRequestSerializer,
    StorageTrendQuerySerializer,
    StorageTrendSerializer,
    TaskBucketSerializer,
    ThresholdSerializer,
)
from monitoring.models import (
    DailyStatistic,
    DailyStorage,
    DatabaseSnapshot,
    RequestBucket,
    SlowQuery,
    SlowRequest,
    TaskBucket,
)


def time_range_filter(
    model: type, field: str, others: list[str], *, dates: bool = False
) -> type[filters.FilterSet]:
    """A filter set of `model` with `since` (inclusive) and `until` (exclusive) on `field`,
    ISO 8601 times (or dates), and plain filters on `others`."""
    kind = django_filters.DateFilter if dates else filters.UtcDateTimeFilter
    meta = type("Meta", (), {"model": model, "fields": ["since", "until", *others]})
    return type(
        f"{model.__name__}Filter",
        (filters.FilterSet,),
        {
            "since": kind(field_name=field, lookup_expr="gte"),
            "until": kind(field_name=field, lookup_expr="lt"),
            "Meta": meta,
        },
    )


class ListViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """A table read by time range only: its rows have no lasting id (a rerun of daily_stats
    makes the day's rows anew), so there is no detail route."""


RequestBucketFilter = time_range_filter(
    RequestBucket, "minute", ["route", "method", "status_class"]
)
TaskBucketFilter = time_range_filter(TaskBucket, "minute", ["func", "outcome"])
DailyStatisticFilter = time_range_filter(
    DailyStatistic, "day", ["kind", "name", "method"], dates=True
)
SlowRequestFilter = time_range_filter(SlowRequest, "at", ["route", "method"])
SlowQueryFilter = time_range_filter(SlowQuery, "at", ["route"])
DailyStorageFilter = time_range_filter(DailyStorage, "day", ["table"], dates=True)
DatabaseSnapshotFilter = time_range_filter(DatabaseSnapshot, "taken_at", ["engine"])


class RequestBucketViewSet(ListViewSet):
    """Minute buckets of requests per route, method and status class, newest first:
    `?since=&until=` (ISO 8601 times) select a time range."""

    serializer_class = RequestBucketSerializer
    filterset_class = RequestBucketFilter
    ordering_fields = ["minute", "count", "duration_max"]

    def get_queryset(self):
        return selectors.request_buckets_list()


class TaskBucketViewSet(ListViewSet):
    """Minute buckets of django-q2 task runs per function and outcome, newest first."""

    serializer_class = TaskBucketSerializer
    filterset_class = TaskBucketFilter
    ordering_fields = ["minute", "count", "run_seconds_max"]

    def get_queryset(self):
        return selectors.task_buckets_list()


class DailyStatisticViewSet(ListViewSet):
    """Daily statistics per route and per task, newest first: `?since=&until=` (dates). The
    slowest routes of a day: `?kind=route&since=D&until=D+1&ordering=-p95`."""

    serializer_class = DailyStatisticSerializer
    filterset_class = DailyStatisticFilter
    ordering_fields = ["day", "count", "p95", "errors"]

    def get_queryset(self):
        return selectors.daily_statistics_list()


class ThresholdViewSet(viewsets.ReadOnlyModelViewSet):
    """The thresholds and their state (admins edit them in the admin)."""

    serializer_class = ThresholdSerializer
    filterset_fields = ["metric", "enabled", "firing", "severity"]

    def get_queryset(self):
        return selectors.thresholds_list()


class SlowRequestViewSet(viewsets.ReadOnlyModelViewSet):
    """Requests slower than MONITORING_SLOW_REQUEST_MS, newest first."""

    serializer_class = SlowRequestSerializer
    filterset_class = SlowRequestFilter
    ordering_fields = ["at", "seconds"]

    def get_queryset(self):
        return selectors.slow_requests_list()


class SlowQueryViewSet(viewsets.ReadOnlyModelViewSet):
    """Queries slower than MONITORING_SLOW_QUERY_MS, as their shape (no values), newest first."""

    serializer_class = SlowQuerySerializer
    filterset_class = SlowQueryFilter
    ordering_fields = ["at", "seconds"]

    def get_queryset(self):
        return selectors.slow_queries_list()


class DatabaseSnapshotViewSet(viewsets.ReadOnlyModelViewSet):
    """Database and host snapshots (every five minutes), newest first."""

    serializer_class = DatabaseSnapshotSerializer
    filterset_class = DatabaseSnapshotFilter
    ordering_fields = ["taken_at", "database_bytes"]

    def get_queryset(self):
        return selectors.database_snapshot_list().order_by("-taken_at", "-pk")


class DailyStorageViewSet(ListViewSet):
    """The database's size (`table` blank) and its largest tables' per day, with the day's
    growth, newest first: `?since=&until=` (dates), `?table=`."""

    serializer_class = DailyStorageSerializer
    filterset_class = DailyStorageFilter
    ordering_fields = ["day", "bytes", "growth_bytes"]

    def get_queryset(self):
        return selectors.daily_storage_list()

    @extend_schema(
        parameters=[StorageTrendQuerySerializer],
        responses=StorageTrendSerializer,
        filters=False,
    )
    @action(detail=False, pagination_class=None, filter_backends=[])
    def trend(self, request: Request) -> Response:
        """Growth per table and for the database (least-squares bytes per day over the last
        `days` days), largest first, with the database volume's free space and the days until
        it is full at the last week's trend."""
        query = StorageTrendQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        trend = selectors.storage_trend(days=query.validated_data["days"])
        return Response(StorageTrendSerializer(trend).data)
