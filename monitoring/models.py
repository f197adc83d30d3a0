"""Error log: unhandled exceptions grouped by fingerprint, with every occurrence's context.

Rows are written by monitoring.services (error_record) only; the admin reads them and changes
a group's status through the services.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from monitoring.histogram import SLOTS


class ErrorStatus(models.TextChoices):
    UNRESOLVED = "unresolved", "Unresolved"
    RESOLVED = "resolved", "Resolved"
    IGNORED = "ignored", "Ignored"


class ErrorSource(models.TextChoices):
    REQUEST = "request", "Request"
    TASK = "task", "Task"
    OPERATION = "operation", "Operation"
    OTHER = "other", "Other"


class ErrorGroup(models.Model):
    """One kind of error: exception type plus the in-app call path that raised it."""

    # Deleted by a retention job: audit events may outlive its rows (integrity.audit_references).
    purged_by_retention = True

    fingerprint = models.CharField(max_length=64, unique=True, help_text="sha256, hex.")
    exception_type = models.CharField(max_length=255, db_index=True)
    message = models.CharField(max_length=1024, blank=True, help_text="The latest message.")
    culprit = models.CharField(
        max_length=255, blank=True, help_text="Innermost in-app frame, module.function."
    )
    status = models.CharField(
        max_length=12, choices=ErrorStatus.choices, default=ErrorStatus.UNRESOLVED, db_index=True
    )
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    count = models.PositiveBigIntegerField(default=0)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    regressed_at = models.DateTimeField(null=True, blank=True)
    last_alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ErrorStatus.values),
                name="monitoring_errorgroup_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.exception_type}: {self.message[:80]}"

    @property
    def alert_key(self) -> str:
        return self.fingerprint[:16]


class ErrorEvent(models.Model):
    """One occurrence of an error group, with the context it happened in (payload sanitized)."""

    # Deleted by a retention job: audit events may outlive its rows (integrity.audit_references).
    purged_by_retention = True

    group = models.ForeignKey(ErrorGroup, on_delete=models.CASCADE, related_name="events")
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=12, choices=ErrorSource.choices)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    user_repr = models.CharField(max_length=150, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    route = models.CharField(max_length=255, blank=True)
    method = models.CharField(max_length=10, blank=True)
    task_name = models.CharField(max_length=255, blank=True)
    operation_name = models.CharField(max_length=255, blank=True)
    payload = models.JSONField(null=True, blank=True)
    message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # Spike detection counts a group's recent events; retention keeps its newest.
            models.Index(fields=["group", "occurred_at"], name="monitoring_event_group_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(source__in=ErrorSource.values),
                name="monitoring_errorevent_source_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Error event {self.pk} ({self.source}, {self.occurred_at:%Y-%m-%d %H:%M:%S})"


class RequestBucket(models.Model):
    """One minute of requests to one route, method and status class: counts, durations, the
    latency histogram (monitoring/histogram.py BOUNDS: h00 counts requests up to 5 ms, ...
    h13 up to 10 s, h14 above), and the database queries the requests made.

    Written by monitoring.services.request_buckets_write, adding to the row (two processes
    that write the same minute add up); purged by age (MONITORING_RAW_RETENTION_DAYS)."""

    purged_by_retention = True

    minute = models.DateTimeField(help_text="The minute's start (UTC).")
    route = models.CharField(max_length=200, help_text="The URL pattern's name, never a path.")
    method = models.CharField(max_length=10)
    status_class = models.CharField(max_length=3, help_text="2xx, 3xx, 4xx or 5xx.")
    count = models.PositiveBigIntegerField(default=0)
    duration_sum = models.FloatField(default=0, help_text="Seconds.")
    duration_max = models.FloatField(default=0, help_text="Seconds.")
    queries = models.PositiveBigIntegerField(default=0)
    query_seconds = models.FloatField(default=0)
    h00 = models.PositiveBigIntegerField(default=0)
    h01 = models.PositiveBigIntegerField(default=0)
    h02 = models.PositiveBigIntegerField(default=0)
    h03 = models.PositiveBigIntegerField(default=0)
    h04 = models.PositiveBigIntegerField(default=0)
    h05 = models.PositiveBigIntegerField(default=0)
    h06 = models.PositiveBigIntegerField(default=0)
    h07 = models.PositiveBigIntegerField(default=0)
    h08 = models.PositiveBigIntegerField(default=0)
    h09 = models.PositiveBigIntegerField(default=0)
    h10 = models.PositiveBigIntegerField(default=0)
    h11 = models.PositiveBigIntegerField(default=0)
    h12 = models.PositiveBigIntegerField(default=0)
    h13 = models.PositiveBigIntegerField(default=0)
    h14 = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-minute", "route"]
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "route", "method", "status_class"],
                name="monitoring_requestbucket_unique_minute",
            ),
            models.CheckConstraint(
                condition=Q(status_class__in=["1xx", "2xx", "3xx", "4xx", "5xx"]),
                name="monitoring_requestbucket_status_class_valid",
            ),
        ]
        indexes = [models.Index(fields=["minute"], name="monitoring_bucket_minute")]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.method} {self.route} {self.status_class}"

    @property
    def histogram(self) -> list[int]:
        return [getattr(self, f"h{index:02d}") for index in range(SLOTS)]


class SnapshotEngine(models.TextChoices):
    POSTGRESQL = "postgresql", "PostgreSQL"
    SQLITE = "sqlite", "SQLite"


class DatabaseSnapshot(models.Model):
    """The database and its host at one moment, every five minutes (docs/monitoring.md).

    The figures later issues chart or put thresholds on are columns; the rest of the engine's
    figures are in `figures`, the host's (CPU, memory, disks) in `host`. Written by
    monitoring.services.database_snapshot_take only; purged by age."""

    purged_by_retention = True

    taken_at = models.DateTimeField(default=timezone.now, db_index=True)
    engine = models.CharField(max_length=12, choices=SnapshotEngine.choices)
    database_bytes = models.BigIntegerField(help_text="The database's size on disk.")
    connections_total = models.PositiveIntegerField(
        null=True, blank=True, help_text="Client connections to this database (PostgreSQL)."
    )
    cache_hit_ratio = models.FloatField(
        null=True, blank=True, help_text="Buffer cache hits / block reads, since stats reset."
    )
    deadlocks = models.BigIntegerField(
        null=True, blank=True, help_text="Deadlocks detected since stats reset (a counter)."
    )
    disk_free_ratio = models.FloatField(
        null=True,
        blank=True,
        help_text="Free share of the database's volume; empty when it is not on this host.",
    )
    figures = models.JSONField(default=dict, blank=True, help_text="The engine's figures.")
    host = models.JSONField(default=dict, blank=True, help_text="CPU, memory and disks.")

    class Meta:
        ordering = ["-taken_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(engine__in=SnapshotEngine.values),
                name="monitoring_databasesnapshot_engine_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.engine} snapshot {self.taken_at:%Y-%m-%d %H:%M:%S}"
