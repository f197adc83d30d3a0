from django.conf import settings
from django.db import models


class IdempotencyKey(models.Model):
    """A client's Idempotency-Key and the first response given for it.

    The row is claimed (status in_progress) and committed before the operation runs, so a
    concurrent request with the same key sees the claim and is refused instead of running twice.
    """

    # Deleted by a retention job: audit events may outlive its rows (integrity.audit_references).
    purged_by_retention = True

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

    Inserted by the operation's first statement and given its result by the last (or inserted
    with its result by the last, `Operation.claim_last`), in the same transaction, so it exists
    exactly when the operation's work does: a retry whose first attempt did commit (a COMMIT
    whose answer was lost with the connection) finds it and returns the first result instead
    of running twice. `completed_at` is when the row was written.
    """

    # Deleted by a retention job: audit events may outlive its rows (integrity.audit_references).
    purged_by_retention = True

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


class CheckStatus(models.TextChoices):
    PASS = "pass", "Pass"
    WARN = "warn", "Warn"
    FAIL = "fail", "Fail"
    ERROR = "error", "Error"


class CheckRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PASS = "pass", "Pass"
    WARN = "warn", "Warn"
    FAIL = "fail", "Fail"
    ERROR = "error", "Error"
    ABANDONED = "abandoned", "Abandoned"


class CheckRun(models.Model):
    """One run of some registered checks: who or what started it, and how it ended."""

    # Deleted by a retention job: audit events may outlive its rows (integrity.audit_references).
    purged_by_retention = True

    Status = CheckRunStatus

    class Trigger(models.TextChoices):
        COMMAND = "command", "Command line"
        SCHEDULE = "schedule", "Schedule"
        API = "api", "API"
        ADMIN = "admin", "Admin"
        PERIOD_CLOSE = "period_close", "Period close"

    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    schedule = models.CharField(max_length=100, blank=True, help_text="Schedule name, if any.")
    tags = models.JSONField(default=list, blank=True)
    checks = models.JSONField(default=list, blank=True, help_text="Check names asked for.")
    since = models.DateTimeField(
        null=True, blank=True, help_text="Window start for windowed checks; empty: full scan."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True, help_text="Checks per outcome.")

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("run_checks", "Can run integrity and financial checks")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=CheckRunStatus.values),
                name="integrity_checkrun_status_valid",
            )
        ]

    def __str__(self) -> str:
        return f"Check run #{self.pk} ({self.status})"

    @property
    def is_full(self) -> bool:
        return self.since is None


class CheckResult(models.Model):
    """The outcome of one check in one run."""

    # Deleted by a retention job: audit events may outlive its rows (integrity.audit_references).
    purged_by_retention = True

    run = models.ForeignKey(CheckRun, on_delete=models.CASCADE, related_name="results")
    check_name = models.CharField(max_length=100)
    tag = models.CharField(max_length=30)
    severity = models.CharField(max_length=10)
    status = models.CharField(max_length=10, choices=CheckStatus.choices)
    failing_count = models.PositiveIntegerField(
        default=0, help_text="Offending rows, not counting explained findings."
    )
    explained_count = models.PositiveIntegerField(default=0)
    warn_at = models.PositiveIntegerField(null=True, blank=True)
    error_at = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text="The exception, when the check itself broke.")

    class Meta:
        ordering = ["run_id", "check_name"]
        indexes = [models.Index(fields=["check_name", "-started_at"])]
        constraints = [
            models.UniqueConstraint(fields=["run", "check_name"], name="integrity_result_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.check_name}: {self.status}"


class FindingExplanation(models.Model):
    """A person's reason why a finding is expected; it covers the same finding in later runs
    (same check and fingerprint: same object, count, sample and details) until it is
    withdrawn. Withdrawn explanations are kept: the findings they covered stay explained."""

    check_name = models.CharField(max_length=100)
    fingerprint = models.CharField(max_length=40)
    reason = models.TextField()
    explained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    explained_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            # One explanation in force per finding; withdrawn ones stay, as history.
            models.UniqueConstraint(
                fields=["check_name", "fingerprint"],
                condition=models.Q(withdrawn_at__isnull=True),
                name="integrity_explanation_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.check_name}: {self.reason[:50]}"


class Finding(models.Model):
    # Deleted by a retention job: audit events may outlive its rows (integrity.audit_references).
    purged_by_retention = True
    run = models.ForeignKey(CheckRun, on_delete=models.CASCADE, related_name="findings")
    result = models.ForeignKey(CheckResult, on_delete=models.CASCADE, related_name="findings")
    check_name = models.CharField(max_length=100, db_index=True)
    severity = models.CharField(max_length=10)
    message = models.TextField()
    count = models.PositiveIntegerField(default=1)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    key = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    sample = models.JSONField(default=list, blank=True)
    fingerprint = models.CharField(max_length=40)
    explanation = models.ForeignKey(
        FindingExplanation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["run_id", "check_name", "id"]
        permissions = [("explain_finding", "Can explain a check finding")]

    def __str__(self) -> str:
        return f"{self.check_name}: {self.message[:60]}"

    @property
    def is_explained(self) -> bool:
        return self.explanation_id is not None
