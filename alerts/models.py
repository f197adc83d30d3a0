from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK: dict[str, int] = {
    Severity.INFO: 0,
    Severity.WARNING: 1,
    Severity.ERROR: 2,
    Severity.CRITICAL: 3,
}


class AlertState(models.TextChoices):
    FIRING = "firing", "Firing"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


OPEN_STATES = (AlertState.FIRING, AlertState.ACKNOWLEDGED)


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    WEBHOOK = "webhook", "Webhook"


class Target(models.Model):
    """Someone or something to notify: an email address, a phone number or a webhook."""

    history = HistoricalRecords()  # the admin's History view; the audit trail is separate

    name = models.CharField(max_length=100, unique=True)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    address = models.CharField(max_length=500, help_text="Email address, phone number or URL.")
    fallback = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Used when this target's channel fails for good.",
    )
    webhook_format = models.CharField(
        max_length=10,
        choices=[("json", "Ledgerguard JSON"), ("slack", "Slack-compatible")],
        default="json",
        help_text="Webhook targets only.",
    )
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.channel})"


class EscalationPolicy(models.Model):
    history = HistoricalRecords()  # the admin's History view; the audit trail is separate
    name = models.CharField(max_length=100, unique=True)
    repeat_last_step = models.BooleanField(default=False)
    ack_timeout_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="An acknowledged alert not resolved within this goes back to escalating.",
    )

    class Meta:
        verbose_name_plural = "escalation policies"

    def __str__(self) -> str:
        return self.name


class EscalationStep(models.Model):
    history = HistoricalRecords()  # the admin's History view; the audit trail is separate
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    delay_minutes = models.PositiveIntegerField(
        default=0, help_text="Wait after the previous step (or after the alert fired)."
    )
    targets = models.ManyToManyField(Target, related_name="+")

    class Meta:
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"], name="alerts_step_position")
        ]

    def __str__(self) -> str:
        return f"{self.policy} step {self.position}"


class Route(models.Model):
    """First matching route (by position) chooses the policy; keep a catch-all last."""

    history = HistoricalRecords()  # the admin's History view; the audit trail is separate

    position = models.PositiveSmallIntegerField(default=100)
    name = models.CharField(max_length=100)
    source = models.CharField(max_length=100, blank=True, help_text="Blank matches any source.")
    key_pattern = models.CharField(
        max_length=255, default="*", help_text="Shell-style, e.g. finance.*"
    )
    min_severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.INFO)
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.PROTECT, related_name="routes")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name


class Alert(models.Model):
    """One problem reported by a control. While it is open, repeats of the same
    (source, key) bump this row instead of making a new one."""

    source = models.CharField(max_length=100)
    key = models.CharField(max_length=255)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    title = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=15, choices=AlertState.choices, default=AlertState.FIRING)
    occurrences = models.PositiveIntegerField(default=1)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    policy = models.ForeignKey(
        EscalationPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    firing = models.PositiveIntegerField(
        default=1,
        help_text="How many times it entered the firing state (raised, or an acknowledgement "
        "timed out). An acknowledge link is good for the firing it was sent for.",
    )
    step = models.SmallIntegerField(default=-1, help_text="Last escalation step notified.")
    round = models.PositiveSmallIntegerField(default=0, help_text="Repeats of the last step.")
    next_escalation_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-last_seen"]
        permissions = [
            ("acknowledge_alert", "Can acknowledge an alert"),
            ("resolve_alert", "Can resolve an alert by hand"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "key"],
                condition=Q(state__in=OPEN_STATES),
                name="alerts_one_open_alert_per_source_key",
            ),
            models.CheckConstraint(
                condition=Q(severity__in=Severity.values), name="alerts_severity_valid"
            ),
            models.CheckConstraint(
                condition=Q(state__in=AlertState.values), name="alerts_state_valid"
            ),
        ]
        indexes = [models.Index(fields=["state", "severity"])]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.source}/{self.key}: {self.title}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class AlertEvent(models.Model):
    """The alert's timeline: raised, repeated, acknowledged, resolved (and, later, deliveries)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30)
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"


class Delivery(models.Model):
    """One notification to one target. Unique per alert, target, kind, step and round: a retry
    of a step never notifies a target that already got it."""

    class Kind(models.TextChoices):
        NOTIFY = "notify", "Notify"
        RESOLVED = "resolved", "Resolved"
        SUMMARY = "summary", "Summary of held notifications"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        HELD = "held", "Held by the rate limit"
        SUMMARISED = "summarised", "Sent in a summary"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.NOTIFY)
    step = models.SmallIntegerField(default=0)
    round = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_error = models.TextField(blank=True)
    response = models.TextField(blank=True)
    items = models.JSONField(default=list, blank=True, help_text="A summary's held alerts.")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    ack_used_at = models.DateTimeField(
        null=True, blank=True, help_text="When this notification's acknowledge link was used."
    )
    report_pending = models.BooleanField(
        default=False,
        help_text="Failed for good with no fallback, and its task has not yet failed for it "
        "(the task's failure is what keeps it as a dead letter).",
    )

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "target", "kind", "step", "round"], name="alerts_delivery_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.alert_id} -> {self.target} ({self.status})"


class Silence(models.Model):
    """Matching alerts are recorded but not delivered while the silence is in force.

    Every silence expires (ends_at). A recurring one (a maintenance window such as every
    Sunday 01:00-03:00 in a named time zone) is in force only inside its window, until it
    expires. A silence that could match a critical alert needs a second person's approval.
    """

    source = models.CharField(max_length=100, blank=True, help_text="Blank matches any source.")
    key_pattern = models.CharField(max_length=255, default="*")
    severity = models.CharField(
        max_length=10, choices=Severity.choices, blank=True, help_text="Blank matches any."
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    weekdays = models.CharField(
        max_length=20,
        blank=True,
        help_text="Recurring window: ISO weekdays, comma-separated (1 = Monday, 7 = Sunday).",
    )
    window_start = models.TimeField(null=True, blank=True)
    window_end = models.TimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    needs_approval = models.BooleanField(default=False)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="alerts_silence_expires"
            )
        ]

    def __str__(self) -> str:
        return (
            f"Silence {self.source or '*'}/{self.key_pattern} until {self.ends_at:%Y-%m-%d %H:%M}"
        )


class Heartbeat(models.Model):
    """The alert pipeline's dead-man switch: the scheduler writes it every minute. An outside
    monitor watches it (GET /alerts/heartbeat/, or the ping to ALERT_HEARTBEAT_URL), because a
    dead scheduler cannot alert about itself."""

    name = models.CharField(max_length=50, primary_key=True)
    beat_at = models.DateTimeField()
    ping_status = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"
