from django.conf import settings
from django.db import models


class IdempotencyKey(models.Model):
    """A client's Idempotency-Key and the first response given for it.

    The row is claimed (status in_progress) and committed before the operation runs, so a
    concurrent request with the same key sees the claim and is refused instead of running twice.
    """

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=300, help_text="HTTP method and path.")
    request_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="integrity_idempotency_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class OperationRecord(models.Model):
    """The committed result of an operation, keyed by its idempotency key.

    Inserted by the operation's first statement and given its result by the last, in the same
    transaction, so it exists exactly when the operation's work does: a retry whose first
    attempt did commit (a COMMIT whose answer was lost with the connection) finds it and
    returns the first result instead of running twice. `completed_at` is when the run began.
    """

    key = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=200)
    payload_hash = models.CharField(max_length=64)
    result = models.JSONField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    completed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.name} [{self.key}]"


class DeadLetter(models.Model):
    """An operation or task that could not finish, with everything needed to finish it later."""

    class Kind(models.TextChoices):
        OPERATION = "operation", "Operation"
        TASK = "task", "Task"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        FAILED = "failed", "Failed"
        RESOLVED = "resolved", "Resolved"
        DISCARDED = "discarded", "Discarded"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.OPERATION)
    operation = models.CharField(
        max_length=200, db_index=True, help_text="Operation name or task function."
    )
    payload = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Retries of the dead letter.")
    max_attempts = models.PositiveSmallIntegerField(default=5)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    discarded_at = models.DateTimeField(null=True, blank=True)
    discarded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    discard_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("retry_deadletter", "Can retry a dead letter"),
            ("discard_deadletter", "Can discard a dead letter"),
        ]
        indexes = [models.Index(fields=["status", "next_retry_at"])]

    def __str__(self) -> str:
        return f"Dead letter #{self.pk} {self.operation} ({self.status})"


class DeadLetterEvent(models.Model):
    """Who did what to a dead letter, and when."""

    dead_letter = models.ForeignKey(DeadLetter, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=30)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.action} at {self.at:%Y-%m-%d %H:%M:%S}"
