"""Real recovery: restore a stored backup into a database named by its URL."""

import time
from pathlib import Path
from typing import Any

from django.db import DatabaseError

from backups import crypto, storage
from backups.engines import EngineError, engine_named, target_for
from backups.engines.base import DatabaseTarget
from backups.exceptions import BackupCorrupt, BackupFailed, RestoreTargetNotEmpty
from backups.models import Backup
from backups.services.common import checkpoints_prefix, record, workdir
from backups.services.verify import RESTORABLE


def backup_restore(
    *,
    backup: Backup,
    database_url: str,
    force: bool = False,
    actor: Any = None,
    checkpoints_dir: Path | None = None,
) -> float:
    """Restore `backup` into the database at `database_url`; returns the seconds it took.

    `checkpoints_dir`: where to put the signed audit checkpoints that travelled with the
    backup, to verify the restored chain against (`verify_audit_chain --checkpoints`).

    Refuses a target that already holds tables unless `force` (then the engine restores over
    it). The object is checked against its SHA-256 before anything is written. Recorded as an
    audit event in the running database when it knows the backup (in a recovery into a new
    server, the running database is the restored one)."""
    if backup.status not in RESTORABLE:
        raise BackupFailed(f"Backup #{backup.pk} is {backup.status}: nothing to restore.")
    if backup.engine == Backup.Engine.PGBACKREST:
        # The set is in pgBackRest's repository: a recovery is pgBackRest's own, onto a server's
        # data directory, not into a database named by URL.
        raise BackupFailed(
            f"backup #{backup.pk} is pgBackRest set {backup.label} ({backup.storage}): restore "
            f"it with `pgbackrest --stanza=<stanza> --set={backup.label} restore` "
            "(docs/backups.md, pgBackRest)"
        )
    try:
        target = DatabaseTarget.from_url(database_url)
    except ValueError as exc:
        raise BackupFailed(f"--database-url: {exc}") from exc
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
    except EngineError as exc:
        raise BackupFailed(f"restore of backup #{backup.pk} failed: {exc}") from exc
    if checkpoints_dir is not None:
        checkpoints_dir.mkdir(parents=True, exist_ok=True)
        for name in backup.checkpoints:
            storage.fetch(name, checkpoints_dir / name.removeprefix(checkpoints_prefix(backup)))
    seconds = time.monotonic() - started
    try:
        known = backup.pk is not None and Backup.objects.filter(pk=backup.pk).exists()
    except DatabaseError:
        known = False  # the running database is gone: a recovery into a new server
    if not known:
        return seconds
    record(
        "backup.restored",
        backup,
        actor,
        target=f"{target.vendor}:{target.host}/{target.name}" if target.host else target.name,
        forced=force,
        seconds=seconds,
    )
    return seconds


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
