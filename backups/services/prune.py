"""Retention: keep the newest backup of each of the last N days, M ISO weeks and K months;
never remove the newest verified backup; say what was removed."""

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backups import storage
from backups.models import Backup, BackupStatus
from backups.services.common import record, stored_files

# Backups whose object is still stored.
STORED = (BackupStatus.COMPLETED, BackupStatus.VERIFIED, BackupStatus.UNVERIFIED)


@dataclass
class PruneResult:
    kept: dict[int, list[str]] = field(default_factory=dict)  # id -> why it is kept
    removed: list[int] = field(default_factory=list)
    dry_run: bool = False


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
    """Apply retention (BACKUP_KEEP_DAILY, BACKUP_KEEP_WEEKLY, BACKUP_KEEP_MONTHLY)."""
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
    by_id = {b.pk: b for b in stored}
    for pk in result.removed:
        backup = by_id[pk]
        for name in stored_files(backup):
            storage.delete_quietly(name)
        with transaction.atomic():
            backup.status = BackupStatus.PRUNED
            backup.pruned_at = timezone.now()
            backup.save(update_fields=["status", "pruned_at"])
            record("backup.pruned", backup, actor, location=backup.location)
    return result
