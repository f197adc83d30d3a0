"""Real recovery: restore a stored backup into a database named by its URL."""

import time
from pathlib import Path
from typing import Any

from django.db import DatabaseError, transaction

from audit.services import audit_record
from backups import crypto, storage
from backups.engines import EngineError, engine_named, target_for
from backups.engines.base import DatabaseTarget
from backups.exceptions import (
    BackupCorrupt,
    BackupFailed,
    BackupNotRestorable,
    RestoreTargetNotEmpty,
)
from backups.models import Backup, BackupStatus
from backups.services.common import checkpoints_prefix, one_line, record, workdir
from backups.services.sweep import backups_sweep
from backups.services.verify import RESTORABLE
from config.errors import DomainError


def backup_restore(
    *,
    backup: Backup,
    database_url: str,
    force: bool = False,
    allow_unverified: bool = False,
    actor: Any = None,
    checkpoints_dir: Path | None = None,
) -> float:
    """Restore `backup` into the database at `database_url`; returns the seconds it took.

    `checkpoints_dir`: where to put the signed audit checkpoints that travelled with the
    backup, to verify the restored chain against (`verify_audit_chain --checkpoints`).

    Refuses a target that already holds tables unless `force` (then the engine restores over
    it), and a backup whose verification or drill failed unless `allow_unverified`. The object
    is checked against its SHA-256 before anything is written. Every restore, done, refused or
    failed, is an audit event in the running database when it can hold one (in a recovery into
    a new server the running database may not exist yet)."""
    try:
        target = DatabaseTarget.from_url(database_url)
    except ValueError as exc:
        failure = BackupFailed(f"--database-url: {exc}")
        _audit(backup, actor, "backup.restore_failed", target="", error=str(failure))
        raise failure from exc
    target_label = _label(target)
    try:
        seconds = _restore(backup, target, force, allow_unverified, checkpoints_dir)
    except DomainError as exc:
        _audit(backup, actor, "backup.restore_failed", target=target_label, error=one_line(exc))
        raise
    _audit(
        backup,
        actor,
        "backup.restored",
        target=target_label,
        forced=force,
        unverified=backup.status == BackupStatus.UNVERIFIED,
        seconds=seconds,
    )
    return seconds


def _restore(
    backup: Backup,
    target: DatabaseTarget,
    force: bool,
    allow_unverified: bool,
    checkpoints_dir: Path | None,
) -> float:
    if backup.status not in RESTORABLE:
        raise BackupNotRestorable(f"Backup #{backup.pk} is {backup.status}: nothing to restore.")
    if backup.status == BackupStatus.UNVERIFIED and not allow_unverified:
        raise BackupNotRestorable(
            f"Backup #{backup.pk} failed verification ({backup.verification_error}); restore "
            "a verified one, or pass --allow-unverified when it is all there is."
        )
    if backup.engine == Backup.Engine.PGBACKREST:
        # The set is in pgBackRest's repository: a recovery is pgBackRest's own, onto a server's
        # data directory, not into a database named by URL.
        raise BackupFailed(
            f"backup #{backup.pk} is pgBackRest set {backup.label} ({backup.storage}): restore "
            f"it with `pgbackrest --stanza=<stanza> --set={backup.label} restore` "
            "(docs/backups.md, pgBackRest)"
        )
    engine = engine_named(backup.engine)
    if target.vendor != ("sqlite" if backup.engine == Backup.Engine.SQLITE else "postgresql"):
        raise BackupFailed(f"a {backup.engine} backup cannot be restored into {target.vendor}")
    try:
        with workdir("restore") as work:
            # Everything about the backup is proven before the target is touched: its
            # SHA-256, its decryption, its archive.
            fetched = work / "fetched.lgb"
            if storage.fetch(backup.location, fetched) != backup.sha256:
                raise BackupCorrupt(f"backup #{backup.pk}: the stored object's SHA-256 changed")
            archive = work / f"archive{engine.suffix}"
            crypto.unpack(fetched, archive, refuse_plain=crypto.encryption_key() is not None)
            fetched.unlink()
            report = engine.check_archive(archive)
            if not report.ok:
                raise BackupCorrupt(f"backup #{backup.pk}: the archive does not read back")
            # The checkpoints too, before anything is written: a restore that then fails on
            # them would leave a restored target and no record.
            if checkpoints_dir is not None:
                _fetch_checkpoints(backup, checkpoints_dir)
            if not engine.is_empty(target):
                if not force:
                    raise RestoreTargetNotEmpty(
                        f"The target database {target.name} is not empty; pass --force to "
                        "restore over it."
                    )
                if _is_live(target):
                    raise RestoreTargetNotEmpty(
                        f"The target database {target.name} is the one this application runs "
                        "on, and it is not empty: restore into another database, then switch "
                        "DATABASE_URL to it."
                    )
                engine.clear(target)
            started = time.monotonic()
            engine.restore(archive, target)
            seconds = time.monotonic() - started
    except EngineError as exc:
        raise BackupFailed(f"restore of backup #{backup.pk} failed: {exc}") from exc
    if _is_live(target):
        # The restored rows are the application's now: the backup's own row, RUNNING as of
        # its snapshot, is completed from its manifest at once (a second restore, a drill or
        # a download of it would otherwise be refused until the daily sweep).
        backups_sweep(stale_too=False)
    return seconds


def _fetch_checkpoints(backup: Backup, directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name in backup.checkpoints:
            storage.fetch(name, directory / name.removeprefix(checkpoints_prefix(backup)))
    except OSError as exc:
        raise BackupFailed(f"--checkpoints-dir {directory}: {exc.strerror or exc}") from None


def _label(target: DatabaseTarget) -> str:
    """The target as the audit event names it: never its user or password."""
    if target.host:
        return f"{target.vendor}:{target.host}/{target.name}"
    return f"{target.vendor}:{target.name}"


def _audit(backup: Backup, actor: Any, action: str, **metadata: Any) -> None:
    """Record the restore in the running database, when it has an audit trail to record into:
    in a recovery into a new server it may be empty or gone (the restored copy then tells
    what it holds; the command's output tells the rest)."""
    try:
        with transaction.atomic():
            if backup.pk is not None and Backup.objects.filter(pk=backup.pk).exists():
                record(action, backup, actor, **metadata)
            else:  # a backup known only from its manifest
                audit_record(
                    action=action,
                    object_type=Backup._meta.label_lower,
                    object_id=backup.pk,
                    object_repr=f"Backup #{backup.pk} {backup.engine} (from its manifest)",
                    actor=actor,
                    metadata={**metadata, "from_manifest": True},
                )
    except DatabaseError:
        pass  # no audit trail in the running database (a new server before its restore)


def _is_live(target: DatabaseTarget) -> bool:
    """`target` is the database the application runs on (never overwritten while it holds
    anything; a recovery restores into an empty one)."""
    live = target_for("default")
    if target.vendor != live.vendor:
        return False
    if target.vendor == "sqlite":
        return Path(target.name).resolve() == Path(live.name).resolve()
    same_host = (target.host or "localhost") == (live.host or "localhost")
    return (
        same_host
        and (target.port or "5432") == (live.port or "5432")
        and (target.name == live.name)
    )
