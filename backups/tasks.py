"""django-q2 jobs of the backups control: thin wrappers over the services."""

from typing import Any

from backups import services
from backups.exceptions import BackupFailed
from backups.models import Backup, RestoreDrill


def backup_and_verify(backup_id: int | None = None) -> dict[str, Any]:
    """The daily job (or an API/admin request's backup row): take it, then verify it."""
    if backup_id is None:
        backup = services.backup_start(trigger=Backup.Trigger.SCHEDULE)
    else:
        backup = Backup.objects.get(pk=backup_id)
    backup = services.backup_take(backup=backup)
    backup = services.backup_verify(backup=backup)
    return {"backup": backup.pk, "status": backup.status}


def restore_drill(drill_id: int | None = None) -> dict[str, Any]:
    """The weekly drill of the newest good backup (or an API/admin request's drill row)."""
    if drill_id is None:
        backup = services.newest_good_backup()
        if backup is None:
            raise BackupFailed("no backup to drill: take one first")
        drill = services.drill_start(backup=backup, trigger=Backup.Trigger.SCHEDULE)
    else:
        drill = RestoreDrill.objects.get(pk=drill_id)
    drill = services.drill_run(drill=drill)
    return {"drill": drill.pk, "status": drill.status, "restore_seconds": drill.restore_seconds}


def prune() -> dict[str, Any]:
    result = services.backups_prune()
    return {"removed": result.removed, "kept": sorted(result.kept)}
