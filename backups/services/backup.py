"""Taking a backup: a consistent copy, packed (compressed, encrypted), stored with its SHA-256
(or a pgBackRest set in its repository), the signed audit checkpoints beside it, and what the
database held, on the Backup row."""

from pathlib import Path
from typing import Any, NoReturn

from django.db import transaction
from django.utils import timezone

from audit.services import checkpoint_dir
from backups import crypto, storage
from backups.engines import KEY_TABLES
from backups.exceptions import BackupFailed
from backups.models import Backup, BackupStatus
from backups.services import catalog, physical
from backups.services.common import (
    BACKUP_FAILED,
    Taken,
    alert,
    checkpoints_prefix,
    live_engine,
    manifest_for,
    object_name,
    one_line,
    record,
    resolve,
    selected_engine,
    workdir,
)


def backup_start(*, actor: Any = None, trigger: str = Backup.Trigger.COMMAND) -> Backup:
    """The row of a backup about to be taken (RUNNING), so that an API call can answer with it
    while a worker takes it."""
    engine = selected_engine()
    with transaction.atomic():
        backup = Backup.objects.create(
            engine=engine, trigger=trigger, started_at=timezone.now(), created_by=actor
        )
        record("backup.started", backup, actor, trigger=trigger)
    return backup


def backup_create(*, actor: Any = None, trigger: str = Backup.Trigger.COMMAND) -> Backup:
    """Take a backup of the running database now. Raises BackupError (the row says FAILED, an
    alert is raised) when any step fails."""
    return backup_take(backup=backup_start(actor=actor, trigger=trigger), actor=actor)


def backup_take(*, backup: Backup, actor: Any = None) -> Backup:
    """Take the backup a RUNNING row stands for: an archive stored in the backup storage, or
    (engine pgbackrest) a set in the stanza's repository; either way its signed audit
    checkpoints and its manifest go to the backup storage."""
    # Every name this backup put into the backup storage, so that a failure removes exactly
    # those (a half-written backup is not a backup) and nothing of another backup's.
    stored: list[str] = []
    try:
        with workdir("backup") as work:
            if backup.engine == Backup.Engine.PGBACKREST:
                taken = physical.set_take(backup)
            else:
                taken = _archive_take(backup, work, stored)
            checkpoints = _store_checkpoints(backup, stored)
            _store_manifest(backup, taken, checkpoints, work / "manifest.json", stored)
            _completed(backup, taken, checkpoints, actor)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, alerted and raised
        _failed(backup, exc, actor, stored)
    resolve(BACKUP_FAILED)
    return backup


def _completed(backup: Backup, taken: Taken, checkpoints: list[str], actor: Any) -> None:
    """The row says COMPLETED with what was taken, unless a sweep declared its worker dead
    meanwhile (then the backup is not trusted). A sweep that found its manifest and completed
    it from there wrote the same values."""
    snapshot = taken.snapshot
    with transaction.atomic():
        live = (BackupStatus.RUNNING, BackupStatus.COMPLETED)
        if not Backup.objects.select_for_update().filter(pk=backup.pk, status__in=live).exists():
            raise BackupFailed(f"backup #{backup.pk} is no longer running (swept as stale)")
        backup.status = BackupStatus.COMPLETED
        backup.finished_at = timezone.now()
        backup.snapshot_at = snapshot.taken_at
        backup.database = taken.database
        backup.schema_version = snapshot.schema_version
        backup.row_counts = snapshot.row_counts
        backup.audit_head = snapshot.audit_head
        backup.label = snapshot.label
        backup.size_bytes = taken.size
        backup.sha256 = taken.sha256
        backup.storage = taken.storage
        backup.compressed, backup.encrypted = taken.compressed, taken.encrypted
        backup.checkpoints = checkpoints
        backup.save()
        record(
            "backup.completed",
            backup,
            actor,
            location=backup.location,
            size=backup.size_bytes,
            sha256=backup.sha256,
            seconds=backup.duration_seconds,
        )


def _archive_take(backup: Backup, work: Path, stored_names: list[str]) -> Taken:
    """A consistent copy by the running database's engine, packed (compressed, encrypted) and
    stored with its SHA-256."""
    engine, target = live_engine()
    archive = work / f"archive{engine.suffix}"
    snapshot = engine.dump(target, archive, KEY_TABLES)
    packed = work / "packed.lgb"
    packing = crypto.pack(archive, packed)
    backup.location = object_name(backup, engine.suffix)
    stored = storage.store(packed, backup.location)
    stored_names.append(backup.location)
    if stored.sha256 != packing.sha256:
        raise BackupFailed(
            f"the stored object's SHA-256 {stored.sha256} is not the one written ({packing.sha256})"
        )
    return Taken(
        snapshot=snapshot,
        database=snapshot.database or target.name,
        size=stored.size,
        sha256=stored.sha256,
        storage=stored.storage,
        compressed=packing.compressed,
        encrypted=packing.encrypted,
    )


def _store_manifest(
    backup: Backup, taken: Taken, checkpoints: list[str], local: Path, stored: list[str]
) -> None:
    """The manifest, signed (catalog.sign): a recovery trusts only what the key signed."""
    snapshot = taken.snapshot
    local.write_text(
        catalog.manifest_text(
            {
                "id": backup.pk,
                "engine": backup.engine,
                "started_at": backup.started_at.isoformat(),
                "snapshot_at": snapshot.taken_at.isoformat(),
                "database": taken.database,
                "location": backup.location,
                "size_bytes": taken.size,
                "sha256": taken.sha256,
                "storage": taken.storage,
                "compressed": taken.compressed,
                "encrypted": taken.encrypted,
                "schema_version": snapshot.schema_version,
                "row_counts": snapshot.row_counts,
                "audit_head": snapshot.audit_head,
                "checkpoints": checkpoints,
                "label": snapshot.label,
                **taken.extra,
            }
        )
    )
    storage.store(local, manifest_for(backup))
    stored.append(manifest_for(backup))


def _store_checkpoints(backup: Backup, stored: list[str]) -> list[str]:
    """The signed audit checkpoints travel with the backup: a restored database is then checked
    against checkpoints that were never in it."""
    directory = checkpoint_dir()
    files = sorted(directory.glob("checkpoint-*.json")) if directory.is_dir() else []
    names = []
    for path in files:
        name = checkpoints_prefix(backup) + path.name
        storage.store(Path(path), name)
        stored.append(name)
        names.append(name)
    return names


def _failed(backup: Backup, exc: BaseException, actor: Any, stored: list[str]) -> NoReturn:
    reason = one_line(exc)
    # A half-written backup is not a backup: what it stored goes. (A set pgBackRest made is
    # pgBackRest's: its retention expires it.)
    for name in reversed(stored):
        storage.delete_quietly(name)
    with transaction.atomic():
        backup.status = BackupStatus.FAILED
        backup.finished_at = timezone.now()
        backup.error = reason
        backup.checkpoints = []
        backup.save(update_fields=["status", "finished_at", "error", "location", "checkpoints"])
        record("backup.failed", backup, actor, error=reason)
    alert(
        BACKUP_FAILED,
        f"Backup #{backup.pk} failed: {reason}",
        {"backup": backup.pk, "engine": backup.engine, "error": reason},
    )
    raise BackupFailed(f"backup #{backup.pk} failed: {reason}") from exc
