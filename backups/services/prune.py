"""Retention: keep the newest backup of each of the last N days, M ISO weeks and K months;
never remove the newest verified backup; say what was removed."""

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backups import storage
from backups.exceptions import BackupNameInvalid, BackupStorageFailed
from backups.models import Backup, BackupStatus, RestoreDrill
from backups.services.common import move_status, one_line, record, stored_files

# Backups whose object is still stored.
STORED = (BackupStatus.COMPLETED, BackupStatus.VERIFIED, BackupStatus.UNVERIFIED)


@dataclass
class PruneResult:
    kept: dict[int, list[str]] = field(default_factory=dict)  # id -> why it is kept
    removed: list[int] = field(default_factory=list)
    dry_run: bool = False
    # Backups retention would remove but could not: id -> why (their rows stay as they were,
    # the next run tries again).
    failed: dict[int, str] = field(default_factory=dict)
    # Names of removed backups (their manifests, checkpoints) that the storage kept.
    leftovers: list[str] = field(default_factory=list)


def retention_plan(backups: list[Backup], *, daily: int, weekly: int, monthly: int) -> PruneResult:
    """Which of `backups` (stored ones, any order) retention keeps, and why."""
    result = PruneResult()
    newest_first = sorted(backups, key=lambda b: (b.started_at, b.pk), reverse=True)
    buckets: list[tuple[str, int, Any]] = [
        ("daily", daily, lambda d: d),
        ("weekly", weekly, lambda d: tuple(d.isocalendar())[:2]),
        ("monthly", monthly, lambda d: (d.year, d.month)),
    ]
    for rule, count, bucket_of in buckets:
        seen: list[Any] = []
        for backup in newest_first:
            if backup.status == BackupStatus.UNVERIFIED:
                continue  # a backup that failed verification never stands for its period
            day: date = timezone.localtime(backup.started_at).date()
            bucket = bucket_of(day)
            if bucket in seen:
                continue
            if len(seen) >= count:
                break
            seen.append(bucket)
            result.kept.setdefault(backup.pk, []).append(rule)
    verified = [b for b in newest_first if b.status == BackupStatus.VERIFIED]
    if verified:
        result.kept.setdefault(verified[0].pk, []).append("newest verified")
    # No unverified backup newer than the newest verified one goes: when verification keeps
    # failing for a reason that is not the backups' (credentials, a key, a tool), they may be
    # all there is.
    for backup in newest_first:
        if verified and backup is verified[0]:
            break
        if backup.status == BackupStatus.UNVERIFIED:
            result.kept.setdefault(backup.pk, []).append("newer than the newest verified")
    result.removed = [b.pk for b in newest_first if b.pk not in result.kept]
    return result


def backups_prune(*, dry_run: bool = False, actor: Any = None) -> PruneResult:
    """Apply retention (BACKUP_KEEP_DAILY, BACKUP_KEEP_WEEKLY, BACKUP_KEEP_MONTHLY).

    Each removal holds the backup's row lock (which starting a drill takes too), skips a
    backup that changed since the plan or has a drill running, and marks the row PRUNED only
    once its stored object is gone: a storage that refuses leaves the backup as it was, in
    `failed`, for the next run."""
    stored = list(Backup.objects.filter(status__in=STORED))
    result = retention_plan(
        stored,
        daily=settings.BACKUP_KEEP_DAILY,
        weekly=settings.BACKUP_KEEP_WEEKLY,
        monthly=settings.BACKUP_KEEP_MONTHLY,
    )
    result.dry_run = dry_run
    if dry_run:
        return result
    planned, result.removed = result.removed, []
    for pk in planned:
        with transaction.atomic():
            backup = Backup.objects.select_for_update().filter(pk=pk, status__in=STORED).first()
            if backup is None:
                continue  # verified, drilled or pruned by someone else since the plan
            if backup.drills.filter(status=RestoreDrill.Status.RUNNING).exists():
                result.kept[pk] = ["drill running"]
                continue
            names = stored_files(backup)
            try:
                storage.delete(names[0])  # the object (a pgBackRest backup's manifest)
            except (BackupStorageFailed, BackupNameInvalid) as exc:
                result.failed[pk] = one_line(exc)
                continue
            for name in names[1:]:
                try:
                    storage.delete(name)
                except (BackupStorageFailed, BackupNameInvalid):
                    result.leftovers.append(name)
            move_status(backup, BackupStatus.PRUNED, only_from=STORED, pruned_at=timezone.now())
            record("backup.pruned", backup, actor, location=backup.location)
            result.removed.append(pk)
    return result
