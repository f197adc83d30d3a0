"""Reads of the backups control: the admin's lists, the dashboard's measurements and the
recovery objectives they are judged against."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet

from backups.models import Backup, BackupStatus, RestoreDrill

STORED = (BackupStatus.COMPLETED, BackupStatus.VERIFIED, BackupStatus.UNVERIFIED)
FINISHED_DRILLS = (RestoreDrill.Status.PASSED, RestoreDrill.Status.FAILED)
# The most points a chart reads (a year of hourly backups would be 8760): the newest win.
CHART_POINTS = 1000


@dataclass(frozen=True)
class Objectives:
    """The recovery objectives the dashboard and the checks judge against (config/settings.py)."""

    rpo: timedelta  # BACKUP_RPO_HOURS: the newest verified backup may be this old
    drill_max_age: timedelta  # BACKUP_DRILL_MAX_AGE_DAYS: a drill must have passed within it
    rto: timedelta  # BACKUP_RTO_MINUTES: a restore should take no longer


def objectives() -> Objectives:
    return Objectives(
        rpo=timedelta(hours=settings.BACKUP_RPO_HOURS),
        drill_max_age=timedelta(days=settings.BACKUP_DRILL_MAX_AGE_DAYS),
        rto=timedelta(minutes=settings.BACKUP_RTO_MINUTES),
    )


def latest_stored_backup() -> Backup | None:
    return Backup.objects.filter(status__in=STORED).order_by("-started_at", "-id").first()


def backups_list() -> QuerySet[Backup]:
    return Backup.objects.select_related("created_by").order_by("-started_at", "-id")


def drills_list() -> QuerySet[RestoreDrill]:
    return RestoreDrill.objects.select_related("backup", "created_by").order_by(
        "-started_at", "-id"
    )


def backup_latest() -> Backup | None:
    """The newest backup of any status (a running or failed one included)."""
    return Backup.objects.order_by("-started_at", "-id").first()


def backup_latest_verified() -> Backup | None:
    """The newest verified backup by the moment it is consistent as of: the recovery point
    on offer now (as the check `backups.last_backup_recent` reads it)."""
    return (
        Backup.objects.filter(status=BackupStatus.VERIFIED, snapshot_at__isnull=False)
        .order_by("-snapshot_at", "-id")
        .first()
    )


def drill_latest() -> RestoreDrill | None:
    """The newest drill that finished (passed or failed), with its backup."""
    return (
        RestoreDrill.objects.filter(status__in=FINISHED_DRILLS, finished_at__isnull=False)
        .select_related("backup")
        .order_by("-finished_at", "-id")
        .first()
    )


def drills_running_count() -> int:
    return RestoreDrill.objects.filter(status=RestoreDrill.Status.RUNNING).count()


@dataclass(frozen=True)
class DrillPoint:
    at: datetime
    backup_id: int
    status: str
    restore_seconds: float | None


def drill_points(*, since: datetime) -> list[DrillPoint]:
    """Finished drills since `since`, oldest first: what each restore took."""
    rows = (
        RestoreDrill.objects.filter(status__in=FINISHED_DRILLS, started_at__gte=since)
        .order_by("-started_at", "-id")
        .values_list("started_at", "backup_id", "status", "restore_seconds")[:CHART_POINTS]
    )
    return [DrillPoint(*row) for row in reversed(rows)]


@dataclass(frozen=True)
class RecoveryPoint:
    """A verified backup and how long the books had no newer verified backup before it: the
    most that a disaster just before it would have lost."""

    at: datetime
    gap: timedelta | None  # None for the first one read


def recovery_points(*, since: datetime) -> list[RecoveryPoint]:
    """Backups that were verified (those retention pruned since included; not those that
    failed verification), oldest first, with the gap since the one before each. One before
    `since` is read too, so that the first gap in the range is known."""
    verified = Backup.objects.filter(
        verified_at__isnull=False, snapshot_at__isnull=False, verification_error=""
    ).exclude(status=BackupStatus.UNVERIFIED)
    before = (
        verified.filter(snapshot_at__lt=since)
        .order_by("-snapshot_at")
        .values_list("snapshot_at", flat=True)[:1]
    )
    inside = (
        verified.filter(snapshot_at__gte=since)
        .order_by("-snapshot_at")
        .values_list("snapshot_at", flat=True)[:CHART_POINTS]
    )
    times = [t for t in [*before, *reversed(list(inside))] if t is not None]
    points: list[RecoveryPoint] = []
    for previous, current in zip([None, *times], times, strict=False):
        if current < since:
            continue
        points.append(RecoveryPoint(current, None if previous is None else current - previous))
    return points


@dataclass(frozen=True)
class SizePoint:
    at: datetime
    size_bytes: int
    seconds: float | None


def backup_size_points(*, since: datetime) -> list[SizePoint]:
    """Backups that were stored since `since` (pruned ones too), oldest first: their size and
    how long each took."""
    rows = (
        Backup.objects.filter(started_at__gte=since, size_bytes__isnull=False)
        .exclude(status=BackupStatus.FAILED)
        .order_by("-started_at", "-id")
        .values_list("started_at", "size_bytes", "finished_at")[:CHART_POINTS]
    )
    return [
        SizePoint(started, size, None if finished is None else (finished - started).total_seconds())
        for started, size, finished in reversed(rows)
        if size is not None
    ]
