"""Error log: unhandled exceptions grouped by fingerprint, with every occurrence's context.

Rows are written by monitoring.services (error_record) only; the admin reads them and changes
a group's status through the services.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


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
