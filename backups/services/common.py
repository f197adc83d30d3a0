"""What the backup services share: the engine and target of the running database, object
names, a scratch directory, failure alerts and audit events, and what a backup or a drill's
restore produced (whichever engine made it)."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q

from alerts.services import raise_alert, resolve_alert
from audit.services import audit_record
from backups.engines import engine_for, target_for
from backups.engines.base import BackupEngine, DatabaseTarget, Snapshot
from backups.models import Backup

ALERT_SOURCE = "backups"
# The alerts the control raises (docs/runbooks.md): a backup that failed, a stored backup that
# does not verify, a drill that failed. A later good run of the same kind resolves each.
BACKUP_FAILED = "backup_failed"
VERIFICATION_FAILED = "verification_failed"
DRILL_FAILED = "drill_failed"


@dataclass
class Taken:
    """What taking a backup produced, for its row and its manifest: what the database held,
    and the stored object (an archive engine's) or the backup set (pgBackRest's). `extra`
    goes into the manifest only."""

    snapshot: Snapshot
    database: str
    size: int
    sha256: str
    storage: str
    compressed: bool = False
    encrypted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RestoredCopy:
    """A drill's restored copy while it exists: where it is, how long the restore took, what
    it holds, and what else the drill records about it (`details`, into its results)."""

    target: DatabaseTarget
    restore_seconds: float
    snapshot: Snapshot
    details: dict[str, Any] = field(default_factory=dict)


def live_engine() -> tuple[BackupEngine, DatabaseTarget]:
    """The engine for the database the application runs on, and where that database is."""
    return engine_for(connection), target_for("default")


def selected_engine() -> str:
    """The Backup.Engine value new backups are taken with: pgBackRest when BACKUP_ENGINE says
    so, else the archive engine of the running database."""
    if settings.BACKUP_ENGINE == Backup.Engine.PGBACKREST:
        return Backup.Engine.PGBACKREST.value
    engine, _target = live_engine()
    return engine.name


def object_name(backup: Backup, suffix: str) -> str:
    """`<year>/<month>/<UTC time>-<id>-<engine><suffix>.lgb`: sorts by time, names its row."""
    at = backup.started_at
    return f"{at:%Y/%m}/{at:%Y%m%dT%H%M%SZ}-{backup.pk}-{backup.engine}{suffix}.lgb"


def files_name(backup: Backup) -> str:
    """What the backup's manifest and checkpoints are named after in the backup storage: its
    stored object; for a pgBackRest backup, whose set lives in pgBackRest's repository (its
    location is the set's label), the name an object of it would have, without the suffix."""
    if backup.engine == Backup.Engine.PGBACKREST:
        return object_name(backup, "").removesuffix(".lgb")
    return backup.location


def manifest_name(location: str) -> str:
    """The manifest stored beside each backup: what its row says, so that a recovery can find
    and check the backup when the database that held the rows is gone."""
    return f"{location}.manifest.json"


def manifest_for(backup: Backup) -> str:
    return manifest_name(files_name(backup))


def checkpoints_prefix(backup: Backup) -> str:
    return f"{files_name(backup)}.checkpoints/"


def stored_files(backup: Backup) -> list[str]:
    """Every name the backup has in the backup storage: its object (not for pgBackRest, whose
    set pgBackRest's own retention expires), its manifest and its checkpoints."""
    own = [] if backup.engine == Backup.Engine.PGBACKREST else [backup.location]
    return [*own, manifest_for(backup), *backup.checkpoints]


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A private scratch directory on the backup volume's side (BACKUP_WORK_DIR, default the
    system's temp dir), removed afterwards whatever happens."""
    base = getattr(settings, "BACKUP_WORK_DIR", None) or None
    path = Path(tempfile.mkdtemp(prefix=f"ledgerguard-{prefix}-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def move_status(
    backup: Backup,
    status: str,
    *,
    only_from: tuple[str, ...],
    where: Q | None = None,
    **values: Any,
) -> bool:
    """Set the backup's status (and `values`) only when the row is still in one of `only_from`
    (and matches `where`): a prune, a drill or a sweep may have moved it since it was read. The
    instance follows when the row did; False when the row had moved (then nothing is
    written)."""
    rows = Backup.objects.filter(pk=backup.pk, status__in=only_from)
    moved = rows.filter(where or Q()).update(status=status, **values)
    if moved:
        backup.status = status
        for name, value in values.items():
            setattr(backup, name, value)
    else:
        backup.refresh_from_db(fields=["status"])
    return bool(moved)


def alert(key: str, title: str, details: dict[str, Any], *, severity: str = "critical") -> None:
    raise_alert(source=ALERT_SOURCE, key=key, severity=severity, title=title, details=details)


def resolve(key: str) -> None:
    resolve_alert(source=ALERT_SOURCE, key=key)


def record(action: str, backup: Backup, actor: Any, **metadata: Any) -> None:
    audit_record(action=action, obj=backup, actor=actor, metadata=metadata)


def one_line(exc: BaseException) -> str:
    """An error as one line for a row, an alert and a command's exit message."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code and not str(text).startswith(code):
        text = f"{code}: {text}"  # the stable code of a domain error, for runbooks and alerts
    return " ".join(str(text).split())[:1000]
