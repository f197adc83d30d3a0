"""What the backup services share: the engine and target of the running database, object
names, a scratch directory, failure alerts and audit events."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from alerts.services import raise_alert, resolve_alert
from audit.services import audit_record
from backups.engines import engine_for, target_for
from backups.engines.base import BackupEngine, DatabaseTarget
from backups.models import Backup

ALERT_SOURCE = "backups"
# The alerts the control raises (docs/runbooks.md): a backup that failed, a stored backup that
# does not verify, a drill that failed. A later good run of the same kind resolves each.
BACKUP_FAILED = "backup_failed"
VERIFICATION_FAILED = "verification_failed"
DRILL_FAILED = "drill_failed"


def live_engine() -> tuple[BackupEngine, DatabaseTarget]:
    """The engine for the database the application runs on, and where that database is."""
    return engine_for(connection), target_for("default")


def object_name(backup: Backup, suffix: str) -> str:
    """`<year>/<month>/<UTC time>-<id>-<engine><suffix>.lgb`: sorts by time, names its row."""
    at = backup.started_at
    return f"{at:%Y/%m}/{at:%Y%m%dT%H%M%SZ}-{backup.pk}-{backup.engine}{suffix}.lgb"


def manifest_name(location: str) -> str:
    """The manifest stored beside each backup: what its row says, so that a recovery can find
    and check the backup when the database that held the rows is gone."""
    return f"{location}.manifest.json"


def checkpoints_prefix(backup: Backup) -> str:
    return f"{backup.location}.checkpoints/"


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


def alert(key: str, title: str, details: dict[str, Any], *, severity: str = "critical") -> None:
    raise_alert(source=ALERT_SOURCE, key=key, severity=severity, title=title, details=details)


def resolve(key: str) -> None:
    resolve_alert(source=ALERT_SOURCE, key=key)


def record(action: str, backup: Backup, actor: Any, **metadata: Any) -> None:
    audit_record(action=action, obj=backup, actor=actor, metadata=metadata)


def one_line(exc: BaseException) -> str:
    """An error as one line for a row, an alert and a command's exit message."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:1000]
