"""The audit trail: one append-only, hash-chained table, its head, signed checkpoints and the
record of every verification.

The database refuses UPDATE, DELETE and TRUNCATE of events and checkpoints (`audit/db_guards.py`);
the hash chain and the signed checkpoints catch whoever gets past that (a superuser who disables
the triggers). Events get their id, time and hash just before their transaction commits, with
the chain head locked (`audit/pending.py`), so ids are gapless and follow commit order.
"""

from django.conf import settings
from django.db import models

from audit.canonical import GENESIS_HASH, SCHEMA_VERSION


class AuditEvent(models.Model):
    # The chain position: 1, 2, 3, ... with no gaps, assigned at commit.
    id = models.BigIntegerField(primary_key=True)
    schema_version = models.PositiveSmallIntegerField(default=SCHEMA_VERSION)
    occurred_at = models.DateTimeField(db_index=True)  # commit time; never decreases with id
    # No database constraint and no cascade: deleting a user must not touch the trail.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_repr = models.CharField(max_length=200)
    ip = models.CharField(max_length=45, null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)  # {field: [before, after]}
    metadata = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        default_permissions = ("view",)
        permissions = [
            ("export_auditevent", "Can export the audit trail"),
            ("verify_auditevent", "Can verify the audit chain"),
        ]
        indexes = [
            models.Index(fields=["object_type", "object_id", "id"], name="audit_object_idx"),
            models.Index(fields=["actor", "id"], name="audit_actor_idx"),
            models.Index(fields=["action", "id"], name="audit_action_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.action} by {self.actor_repr}"


class ChainHead(models.Model):
    """The one row that appenders lock; it moves forward only (a trigger refuses otherwise)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sequence = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)
    occurred_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"audit chain head #{self.sequence}"


class Checkpoint(models.Model):
    """A signed statement "event N had hash H", kept here and in the backup location."""

    sequence = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    key_id = models.CharField(max_length=16)
    signature = models.CharField(max_length=64)
    location = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-sequence", "-id"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"checkpoint at #{self.sequence}"


class CheckpointPublication(models.Model):
    """A copy of a signed checkpoint sent to a witness outside the database host (a webhook
    or email addresses: audit/witness.py). Checkpoints cannot change, so whether their copy
    arrived is kept here, one row per checkpoint and channel."""

    class Channel(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        EMAIL = "email", "Email"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    # No database constraint: a foreign key would hang triggers on the immutable checkpoint
    # table (PostgreSQL's RI triggers), and checkpoints are never deleted anyway.
    checkpoint = models.ForeignKey(
        Checkpoint, on_delete=models.DO_NOTHING, db_constraint=False, related_name="publications"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    destination = models.CharField(max_length=200, help_text="Host or addresses, never a URL path.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    response = models.CharField(max_length=250, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        default_permissions = ("view",)
        constraints = [
            models.UniqueConstraint(
                fields=["checkpoint", "channel"], name="audit_publication_once_per_channel"
            )
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"checkpoint #{self.checkpoint_id} to the {self.channel} witness ({self.status})"


class VerificationStatus(models.TextChoices):
    OK = "ok", "OK"
    BROKEN = "broken", "Chain broken"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch", "Checkpoint mismatch"


class Verification(models.Model):
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    triggered_by = models.CharField(max_length=200)
    from_id = models.BigIntegerField(null=True, blank=True)
    to_id = models.BigIntegerField(null=True, blank=True)
    events_checked = models.BigIntegerField(default=0)
    checkpoints_checked = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=24, choices=VerificationStatus.choices)
    first_bad_id = models.BigIntegerField(null=True, blank=True)
    problems = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"verification {self.started_at:%Y-%m-%d %H:%M} {self.status}"

    @property
    def is_full(self) -> bool:
        """The whole chain and its head were checked, not a range: only such a run can say
        that the chain is intact again."""
        return self.from_id is None and self.to_id is None


class RepeatCounter(models.Model):
    """Repeats of an event anyone can cause at will (a bogus token, a refused login, a denied
    request), per address and reason in a fixed window. The first few are recorded in full;
    the rest are only counted here, and the window's count becomes one summary event when it
    closes (`audit.services.repeats_summarize`). Not part of the trail: rows go once summed up.
    """

    reason = models.CharField(max_length=100)
    ip = models.CharField(max_length=45, blank=True)
    window_start = models.DateTimeField()
    recorded = models.PositiveIntegerField(default=0)
    suppressed = models.PositiveIntegerField(default=0)
    by = models.JSONField(default=dict, blank=True)  # {username or "#user id": count}
    first_suppressed_at = models.DateTimeField(null=True, blank=True)
    last_suppressed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(
                fields=["reason", "ip", "window_start"], name="audit_repeat_one_per_window"
            )
        ]
        indexes = [models.Index(fields=["window_start"], name="audit_repeat_window_idx")]

    def __str__(self) -> str:
        return f"{self.reason} from {self.ip or 'unknown'} at {self.window_start:%H:%M}"
