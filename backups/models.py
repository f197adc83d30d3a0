"""Backups and restore drills: what was taken, where it is, what it held, and what proved it."""

from django.conf import settings
from django.db import models


class BackupStatus(models.TextChoices):
    RUNNING = "running", "Running"
    FAILED = "failed", "Failed"  # the dump or the upload did not finish: nothing to restore
    COMPLETED = "completed", "Completed"  # stored, not verified yet
    VERIFIED = "verified", "Verified"  # re-read, checksum and archive proven
    UNVERIFIED = "unverified", "Unverified"  # a verification or a drill failed on it
    PRUNED = "pruned", "Pruned"  # removed by retention (the row stays, the object is gone)


class Backup(models.Model):
    """One backup: engine, timing, the stored object and its SHA-256, and what the database
    held at the time (schema version, row counts of the key tables, the audit chain head)."""

    Status = BackupStatus

    class Engine(models.TextChoices):
        SQLITE = "sqlite", "SQLite online backup"
        PG_DUMP = "pg_dump", "pg_dump (custom format)"
        PGBACKREST = "pgbackrest", "pgBackRest"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        COMMAND = "command", "Command"
        API = "api", "API"
        ADMIN = "admin", "Admin"

    engine = models.CharField(max_length=20, choices=Engine.choices)
    status = models.CharField(
        max_length=20, choices=BackupStatus.choices, default=BackupStatus.RUNNING, db_index=True
    )
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.COMMAND)
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The snapshot the backup is consistent as of (the recovery point it offers).
    snapshot_at = models.DateTimeField(null=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)  # as stored
    sha256 = models.CharField(max_length=64, blank=True)  # of the stored object
    storage = models.CharField(max_length=40, blank=True)  # the storage backend's class
    location = models.CharField(max_length=500, blank=True)  # the object's name in it
    database = models.CharField(max_length=200, blank=True)
    schema_version = models.JSONField(default=dict, blank=True)  # {app: latest migration}
    row_counts = models.JSONField(default=dict, blank=True)  # {table: rows}
    audit_head = models.JSONField(default=dict, blank=True)  # {"id", "hash"} at the time
    checkpoints = models.JSONField(default=list, blank=True)  # checkpoint files stored with it
    compressed = models.BooleanField(default=False)
    encrypted = models.BooleanField(default=False)
    # pgBackRest: the backup set's label in the stanza (the object lives in its repository).
    label = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_error = models.TextField(blank=True)
    pruned_at = models.DateTimeField(null=True, blank=True)
    # Until when a worker holds the row (services.lease): no second worker takes it meanwhile
    # (django-q can hand a job out again while its first run still goes); null until taken.
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        permissions = [
            ("run_backup", "Can take a backup now"),
            ("drill_backup", "Can run a restore drill"),
            ("download_backup", "Can download a stored backup"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=BackupStatus.values),
                name="backups_backup_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Backup #{self.pk} {self.engine} {self.status}"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class RestoreDrill(models.Model):
    """A restore of a backup into a scratch database, with what it proved and how long it took.

    `restore_seconds` is the recovery time actually achieved; `recovery_point_seconds` is how
    old the newest good backup was when the drill ran (how much could have been lost).
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    backup = models.ForeignKey(Backup, on_delete=models.PROTECT, related_name="drills")
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.RUNNING, db_index=True
    )
    trigger = models.CharField(
        max_length=20, choices=Backup.Trigger.choices, default=Backup.Trigger.COMMAND
    )
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    target_time = models.DateTimeField(null=True, blank=True)  # point-in-time drills
    restore_seconds = models.FloatField(null=True, blank=True)
    checks_seconds = models.FloatField(null=True, blank=True)
    recovery_point_seconds = models.FloatField(null=True, blank=True)
    # What was compared and found: {"row_counts": {...}, "schema": {...}, "checks": {...},
    # "audit": {...}} with the expected and restored values where they differ.
    results = models.JSONField(default=dict, blank=True)
    failed_step = models.CharField(max_length=50, blank=True)
    error = models.TextField(blank=True)
    # Until when a worker holds the row (services.lease): no second worker takes it meanwhile
    # (django-q can hand a job out again while its first run still goes); null until taken.
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Drill #{self.pk} of backup #{self.backup_id} {self.status}"
