"""Error log: unhandled exceptions grouped by fingerprint, with every occurrence's context.

Rows are written by monitoring.services (error_record) only; the admin reads them and changes
a group's status through the services.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
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


class HistogramColumns(models.Model):
    """A latency histogram as columns, so that a write adds to them in SQL: h00 counts what
    took up to 5 ms, ... h13 up to 10 s, h14 longer (monitoring/histogram.py BOUNDS)."""

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
        abstract = True

    @property
    def histogram(self) -> list[int]:
        return [getattr(self, f"h{index:02d}") for index in range(SLOTS)]


class RequestBucket(HistogramColumns):
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


class TaskBucket(HistogramColumns):
    """One minute of django-q2 task runs of one function and outcome: how many, how long they
    ran (the histogram counts run time), and how long they waited in the queue first.

    Written by the cluster's monitor process after each task (monitoring/receivers.py),
    adding to the row; purged by age like the request buckets."""

    purged_by_retention = True

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"

    minute = models.DateTimeField(help_text="The minute the task finished in (UTC).")
    func = models.CharField(max_length=200, help_text="The task's function, dotted path.")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    count = models.PositiveBigIntegerField(default=0)
    run_seconds_sum = models.FloatField(default=0)
    run_seconds_max = models.FloatField(default=0)
    wait_seconds_sum = models.FloatField(default=0, help_text="Queued until a worker took it.")

    class Meta:
        ordering = ["-minute", "func"]
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "func", "outcome"], name="monitoring_taskbucket_unique_minute"
            ),
            models.CheckConstraint(
                condition=Q(outcome__in=["success", "failure"]),
                name="monitoring_taskbucket_outcome_valid",
            ),
        ]
        indexes = [models.Index(fields=["minute"], name="monitoring_taskbucket_minute")]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.func} {self.outcome}"


class DailyStatistic(HistogramColumns):
    """One day (UTC) of one route and method, or of one task function: counts, errors (5xx
    answers; failed runs), time, the p50/p95/p99 read from the day's summed histogram, and
    the histogram itself (so that weeks and months combine). Made by daily_stats from the
    minute buckets, kept for years (MONITORING_DAILY_RETENTION_DAYS)."""

    class Kind(models.TextChoices):
        ROUTE = "route", "Route"
        TASK = "task", "Task"

    day = models.DateField()
    kind = models.CharField(max_length=5, choices=Kind.choices)
    name = models.CharField(max_length=200, help_text="The route (URL pattern name) or task.")
    method = models.CharField(max_length=10, blank=True, help_text="Routes only.")
    count = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)
    seconds_sum = models.FloatField(default=0)
    seconds_max = models.FloatField(default=0)
    p50 = models.FloatField(null=True, blank=True, help_text="Seconds.")
    p95 = models.FloatField(null=True, blank=True, help_text="Seconds.")
    p99 = models.FloatField(null=True, blank=True, help_text="Seconds.")
    queries = models.PositiveBigIntegerField(default=0, help_text="Routes only.")

    class Meta:
        ordering = ["-day", "kind", "name", "method"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "kind", "name", "method"], name="monitoring_dailystat_unique"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["route", "task"]), name="monitoring_dailystat_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.method} {self.name}".replace("  ", " ")

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0


class ThresholdSeverity(models.TextChoices):
    """The severities a threshold's alert may have (the alert contract's, but `info`)."""

    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


CLEAR_SIDE_MESSAGE = (
    "The clear value must be on the safe side of the value: at or below it for an 'above' "
    "threshold, at or above it for a 'below' one."
)


class Threshold(models.Model):
    """A limit on a metric, as data that admins edit: breached when the metric compares past
    `value` for `for_minutes` on end, it raises an alert of `severity`; it clears only once
    the metric is back past `clear_value` (hysteresis: a metric hovering on the line does not
    flap). The evaluation state (breaching since, firing) is kept on the row."""

    class Metric(models.TextChoices):
        LATENCY_P95_MS = "latency_p95_ms", "p95 latency of all requests (ms)"
        ERROR_RATE_PERCENT = "error_rate_percent", "Requests answered 5xx (percent)"
        QUEUE_OLDEST_AGE_SECONDS = "queue_oldest_age_seconds", "Oldest queued task's wait (s)"
        TASK_FAILURE_RATE_PERCENT = "task_failure_rate_percent", "Task runs that failed (percent)"
        DISK_FREE_PERCENT = "disk_free_percent", "Free space on the database volume (percent)"
        DAYS_UNTIL_DISK_FULL = "days_until_disk_full", "Days until the database volume is full"
        DEADLOCKS_PER_HOUR = "deadlocks_per_hour", "Deadlocks in the last hour"

    class Comparison(models.TextChoices):
        ABOVE = "above", "above"
        BELOW = "below", "below"

    name = models.CharField(max_length=100, unique=True, help_text="Also the alert's key.")
    metric = models.CharField(max_length=40, choices=Metric.choices)
    comparison = models.CharField(max_length=5, choices=Comparison.choices)
    value = models.FloatField(help_text="Breached past this value.")
    clear_value = models.FloatField(help_text="Cleared only once back past this value.")
    for_minutes = models.PositiveIntegerField(
        default=5, help_text="How long the breach must hold before the alert is raised."
    )
    severity = models.CharField(
        max_length=10, choices=ThresholdSeverity.choices, default=ThresholdSeverity.WARNING
    )
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    # Evaluation state, written by monitoring.services.thresholds_evaluate only.
    breaching_since = models.DateTimeField(null=True, blank=True)
    firing = models.BooleanField(default=False)
    last_value = models.FloatField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(comparison="above", clear_value__lte=models.F("value"))
                | Q(comparison="below", clear_value__gte=models.F("value")),
                name="monitoring_threshold_clear_on_the_safe_side",
                violation_error_message=CLEAR_SIDE_MESSAGE,
            ),
            models.CheckConstraint(
                condition=Q(severity__in=["warning", "error", "critical"]),
                name="monitoring_threshold_severity_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.metric} {self.comparison} {self.value:g}"

    def clean(self) -> None:
        if self.value is None or self.clear_value is None:
            return  # the field's own error says so
        wrong_side = (self.comparison == "above" and self.clear_value > self.value) or (
            self.comparison == "below" and self.clear_value < self.value
        )
        if wrong_side:
            raise ValidationError({"clear_value": CLEAR_SIDE_MESSAGE})

    def breached_by(self, value: float) -> bool:
        return value > self.value if self.comparison == "above" else value < self.value

    def cleared_by(self, value: float) -> bool:
        return (
            value <= self.clear_value if self.comparison == "above" else value >= self.clear_value
        )


class SlowRequest(models.Model):
    """A request slower than MONITORING_SLOW_REQUEST_MS: when, which route, how long, and how
    much of it the database took."""

    purged_by_retention = True

    at = models.DateTimeField(db_index=True)
    route = models.CharField(max_length=200)
    method = models.CharField(max_length=10)
    status = models.PositiveSmallIntegerField()
    seconds = models.FloatField()
    queries = models.PositiveIntegerField(default=0)
    query_seconds = models.FloatField(default=0)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.method} {self.route} {self.seconds:.3f} s"


class SlowQuery(models.Model):
    """A database query slower than MONITORING_SLOW_QUERY_MS: its SQL shape (parameters and
    literals stripped), the route that made it, and how long it took."""

    purged_by_retention = True

    at = models.DateTimeField(db_index=True)
    route = models.CharField(max_length=200)
    sql = models.TextField(help_text="The statement's shape: no parameter values, no literals.")
    seconds = models.FloatField()
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = "slow queries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.route} {self.seconds:.3f} s"


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


class DailyStorage(models.Model):
    """One day (UTC) of the database's size (`table` blank) or of one of its largest tables
    (with its indexes): the size at the day's last snapshot, what it grew since the last
    snapshot before the day, and the rows (PostgreSQL's estimate). Made by daily_stats from the
    snapshots; kept for years like the daily statistics, so that growth trends reach back."""

    day = models.DateField()
    table = models.CharField(max_length=200, blank=True, help_text="Blank: the whole database.")
    bytes = models.BigIntegerField(help_text="At the day's last snapshot.")
    growth_bytes = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Since the last snapshot before the day; empty without one (or for a table "
        "not among the largest then).",
    )
    rows = models.BigIntegerField(null=True, blank=True, help_text="Live rows (PostgreSQL).")

    class Meta:
        ordering = ["-day", "table"]
        verbose_name_plural = "daily storage"
        constraints = [
            models.UniqueConstraint(fields=["day", "table"], name="monitoring_dailystorage_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.table or 'database'}"
