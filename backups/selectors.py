"""Reads of the backups control."""

from django.db.models import QuerySet

from backups.models import Backup, BackupStatus, RestoreDrill

STORED = (BackupStatus.COMPLETED, BackupStatus.VERIFIED, BackupStatus.UNVERIFIED)


def latest_stored_backup() -> Backup | None:
    return Backup.objects.filter(status__in=STORED).order_by("-started_at", "-id").first()


def backups_list() -> QuerySet[Backup]:
    return Backup.objects.select_related("created_by").order_by("-started_at", "-id")


def drills_list() -> QuerySet[RestoreDrill]:
    return RestoreDrill.objects.select_related("backup", "created_by").order_by(
        "-started_at", "-id"
    )
