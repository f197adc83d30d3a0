from rest_framework import serializers

from config import serializers as strict
from monitoring.histogram import percentile
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
from monitoring.selectors import TREND_DAYS


class HistogramFields(serializers.Serializer):
    """The histogram's counts (bucket bounds in docs/monitoring.md) and the percentiles read
    from them, in seconds (null without observations)."""

    histogram = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    p50 = serializers.SerializerMethodField()
    p95 = serializers.SerializerMethodField()
    p99 = serializers.SerializerMethodField()

    def get_p50(self, row: RequestBucket | TaskBucket) -> float | None:
        return percentile(row.histogram, 0.50)

    def get_p95(self, row: RequestBucket | TaskBucket) -> float | None:
        return percentile(row.histogram, 0.95)

    def get_p99(self, row: RequestBucket | TaskBucket) -> float | None:
        return percentile(row.histogram, 0.99)


class RequestBucketSerializer(HistogramFields, strict.ModelSerializer):
    class Meta:
        model = RequestBucket
        fields = [
            "minute",
            "route",
            "method",
            "status_class",
            "count",
            "duration_sum",
            "duration_max",
            "queries",
            "query_seconds",
            "histogram",
            "p50",
            "p95",
            "p99",
        ]


class TaskBucketSerializer(HistogramFields, strict.ModelSerializer):
    class Meta:
        model = TaskBucket
        fields = [
            "minute",
            "func",
            "outcome",
            "count",
            "run_seconds_sum",
            "run_seconds_max",
            "wait_seconds_sum",
            "histogram",
            "p50",
            "p95",
            "p99",
        ]


class DailyStatisticSerializer(strict.ModelSerializer):
    histogram = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    error_rate = serializers.FloatField(read_only=True)

    class Meta:
        model = DailyStatistic
        fields = [
            "day",
            "kind",
            "name",
            "method",
            "count",
            "errors",
            "error_rate",
            "seconds_sum",
            "seconds_max",
            "queries",
            "p50",
            "p95",
            "p99",
            "histogram",
        ]


class ThresholdSerializer(strict.ModelSerializer):
    class Meta:
        model = Threshold
        fields = [
            "id",
            "name",
            "metric",
            "comparison",
            "value",
            "clear_value",
            "for_minutes",
            "severity",
            "enabled",
            "description",
            "firing",
            "breaching_since",
            "last_value",
            "last_evaluated_at",
        ]


class SlowRequestSerializer(strict.ModelSerializer):
    class Meta:
        model = SlowRequest
        fields = [
            "id",
            "at",
            "route",
            "method",
            "status",
            "seconds",
            "queries",
            "query_seconds",
            "request_id",
        ]


class SlowQuerySerializer(strict.ModelSerializer):
    class Meta:
        model = SlowQuery
        fields = ["id", "at", "route", "sql", "seconds", "request_id"]


class DatabaseSnapshotSerializer(strict.ModelSerializer):
    class Meta:
        model = DatabaseSnapshot
        fields = [
            "id",
            "taken_at",
            "engine",
            "database_bytes",
            "connections_total",
            "cache_hit_ratio",
            "deadlocks",
            "disk_free_ratio",
            "figures",
            "host",
        ]


class DailyStorageSerializer(strict.ModelSerializer):
    class Meta:
        model = DailyStorage
        fields = ["day", "table", "bytes", "growth_bytes", "rows"]


class GrowthSerializer(serializers.Serializer):
    table = serializers.CharField(help_text="Blank: the whole database.")
    day = serializers.DateField(help_text="The newest day with a figure.")
    bytes = serializers.IntegerField(help_text="Size that day (tables with their indexes).")
    growth_bytes = serializers.IntegerField(
        allow_null=True, help_text="Growth that day (since the last snapshot before it)."
    )
    rows = serializers.IntegerField(allow_null=True, help_text="Live rows (PostgreSQL).")
    bytes_per_day = serializers.FloatField(
        allow_null=True, help_text="Least-squares slope over the days looked at."
    )
    days = serializers.IntegerField(
        help_text="Days the line is fitted over: the range's days since the last without a "
        "growth figure (a gap, an engine switch, a table back among the largest)."
    )


class StorageTrendSerializer(serializers.Serializer):
    until = serializers.DateField()
    days = serializers.IntegerField()
    database = GrowthSerializer(allow_null=True)
    tables = GrowthSerializer(many=True)
    disk_free_bytes = serializers.FloatField(allow_null=True)
    disk_free_percent = serializers.FloatField(allow_null=True)
    days_until_disk_full = serializers.FloatField(
        allow_null=True, help_text="At the last week's trend of free space (36500: not shrinking)."
    )


class StorageTrendQuerySerializer(serializers.Serializer):
    days = strict.IntegerField(
        required=False,
        default=TREND_DAYS,
        min_value=2,
        max_value=3660,
        help_text="How many days back the trend looks.",
    )
