"""Backups and drills whose worker died: a RUNNING row whose worker's lease lapsed
(services.lease), or that no worker took within BACKUP_STALE_HOURS, is one no worker will
finish (killed, out of memory, the host rebooted). The sweep marks it failed, raises the alert
a failure raises, and removes what a dead backup left in storage.

One RUNNING row is no dead backup: a restored database holds the row of the backup it was
restored from as it was at the snapshot, RUNNING. Its signed manifest in storage says it
completed: the sweep completes the row from the manifest instead, whatever its age (a restore
into the running database does so at once)."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backups import storage
from backups.exceptions import BackupStorageFailed
from backups.models import Backup, BackupStatus, RestoreDrill
from backups.services import catalog
from backups.services.common import (
    BACKUP_FAILED,
    DRILL_FAILED,
    alert,
    move_status,
    object_name,
    record,
)


def stale_before() -> Any:
    return timezone.now() - timedelta(hours=settings.BACKUP_STALE_HOURS)


def backups_sweep(*, actor: Any = None, stale_too: bool = True) -> list[str]:
    """Complete the RUNNING backups whose manifest is stored, and (`stale_too`) fail the stale
    RUNNING backups and drills; one line for each, saying what was done."""
    said = []
    stale = (
        f"no worker finished it within {settings.BACKUP_STALE_HOURS} h (the worker stopped "
        "or was killed)"
    )
    before, now = stale_before(), timezone.now()
    gone = Q(lease_until__lt=now) | Q(lease_until__isnull=True, started_at__lt=before)
    running = list(Backup.objects.filter(status=BackupStatus.RUNNING))
    manifests = {m["id"]: m for m in catalog.stored_manifests()} if running else {}
    for backup in running:
        manifest = manifests.get(backup.pk)
        if manifest is not None and _same_backup(backup, manifest):
            # Its signed manifest is stored, so it completed (the manifest is the last thing
            # a backup stores): a restored row, or one whose worker died just after.
            if _complete_from(backup, manifest, actor):
                said.append(f"backup #{backup.pk} completed from its manifest")
            continue
        if not stale_too:
            continue
        reason = _why_gone(backup) or stale
        with transaction.atomic():
            if not move_status(
                backup,
                BackupStatus.FAILED,
                only_from=(BackupStatus.RUNNING,),
                where=gone,  # else a worker may still finish it
                finished_at=timezone.now(),
                error=reason,
            ):
                continue
            record("backup.failed", backup, actor, error=reason, swept=True)
        left = _remove_leftovers(backup)
        alert(
            BACKUP_FAILED,
            f"Backup #{backup.pk} failed: {reason}",
            {"backup": backup.pk, "engine": backup.engine, "error": reason, "removed": left},
        )
        said.append(f"backup #{backup.pk} marked failed: {reason}")
    drills = RestoreDrill.objects.filter(gone, status=RestoreDrill.Status.RUNNING)
    for drill in drills.select_related("backup") if stale_too else []:
        reason = _why_gone(drill) or stale
        with transaction.atomic():
            moved = RestoreDrill.objects.filter(
                gone, pk=drill.pk, status=RestoreDrill.Status.RUNNING
            ).update(
                status=RestoreDrill.Status.FAILED,
                finished_at=timezone.now(),
                failed_step="worker",
                error=reason,
            )
            if not moved:
                continue
            record(
                "backup.drill_failed",
                drill.backup,
                actor,
                drill=drill.pk,
                step="worker",
                error=reason,
                swept=True,
            )
        alert(
            DRILL_FAILED,
            f"Restore drill #{drill.pk} of backup #{drill.backup_id} failed (worker): {reason}",
            {"drill": drill.pk, "backup": drill.backup_id, "step": "worker", "error": reason},
        )
        said.append(f"drill #{drill.pk} marked failed: {reason}")
    return said


def backup_reclaim(*, backup: Backup, actor: Any = None) -> Backup:
    """A RUNNING backup whose earlier worker died in it (its lease lapsed, services.lease:
    killed, or cut off by Q_TIMEOUT) before the row said how it ended. If that worker stored
    the signed manifest, the last thing a backup stores, the backup is whole: the row is
    completed from it. Otherwise what it stored is removed (`backup.retaken` says what), so
    that the take starts clean: the storage never overwrites a name."""
    if backup.status != BackupStatus.RUNNING:
        return backup
    try:
        manifest = next((m for m in catalog.stored_manifests() if m["id"] == backup.pk), None)
    except BackupStorageFailed:
        return backup  # the take will fail on the storage and say so
    if manifest is not None and _same_backup(backup, manifest):
        _complete_from(backup, manifest, actor)
    else:
        removed = _remove_leftovers(backup)
        with transaction.atomic():
            record("backup.retaken", backup, actor, removed=removed)
    backup.refresh_from_db()
    return backup


def _why_gone(row: Backup | RestoreDrill) -> str | None:
    if row.lease_until is None:
        return None
    return (
        f"no worker finished it: the one that took it stopped or was killed (its lease "
        f"lapsed at {timezone.localtime(row.lease_until):%Y-%m-%d %H:%M:%S})"
    )


def _same_backup(backup: Backup, manifest: dict[str, Any]) -> bool:
    stored = catalog.backup_from_manifest(manifest)
    return stored.started_at == backup.started_at and stored.engine == backup.engine


def _complete_from(backup: Backup, manifest: dict[str, Any], actor: Any) -> bool:
    stored = catalog.backup_from_manifest(manifest)
    values = {
        name: getattr(stored, name)
        for name in (
            "snapshot_at",
            "database",
            "location",
            "size_bytes",
            "sha256",
            "compressed",
            "encrypted",
            "schema_version",
            "row_counts",
            "audit_head",
            "checkpoints",
            "label",
            "storage",
        )
    }
    with transaction.atomic():
        if not move_status(
            backup,
            BackupStatus.COMPLETED,
            only_from=(BackupStatus.RUNNING,),
            finished_at=stored.snapshot_at,
            **values,
        ):
            return False
        record("backup.completed", backup, actor, location=backup.location, from_manifest=True)
    return True


def _remove_leftovers(backup: Backup) -> list[str]:
    """What the dead backup stored: names in its month's folder that begin with its own
    `<time>-<id>-` (object, manifest, checkpoints); nothing of another backup's."""
    stem = object_name(backup, "")
    folder, _, own = stem.rpartition("/")
    prefix = own.removesuffix(f"{backup.engine}.lgb")  # "<time>-<id>-"
    store = storage.backup_storage()
    removed: list[str] = []
    try:
        folders, files = store.listdir(folder)
        names = [f"{folder}/{f}" for f in files if f.startswith(prefix)]
        for sub in folders:
            if sub.startswith(prefix):
                names += [f"{folder}/{sub}/{f}" for f in store.listdir(f"{folder}/{sub}")[1]]
    except (FileNotFoundError, *storage.STORAGE_FAILURES):
        return removed
    for name in names:
        try:
            storage.delete(name)
            removed.append(name)
        except BackupStorageFailed:
            continue
    return removed
