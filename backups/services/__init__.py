"""The backup services: take, verify, drill, restore, prune. Each state change is one
transaction with its audit event; failures mark the row, raise an alert and raise BackupError."""

from backups.services.backup import backup_create, backup_start, backup_take
from backups.services.download import backup_download
from backups.services.drill import (
    check_drill,
    drill_run,
    drill_server,
    drill_start,
    newest_good_backup,
)
from backups.services.lease import Taken, held_until, row_take
from backups.services.prune import PruneResult, backups_prune, retention_plan
from backups.services.queue import backup_queue, drill_queue, verify_queue
from backups.services.restore import backup_restore
from backups.services.sweep import backup_reclaim, backups_sweep
from backups.services.verify import RESTORABLE, backup_verify

__all__ = [
    "RESTORABLE",
    "PruneResult",
    "Taken",
    "backup_create",
    "backup_download",
    "backup_queue",
    "backup_reclaim",
    "backup_restore",
    "backup_start",
    "backup_take",
    "backup_verify",
    "backups_prune",
    "backups_sweep",
    "check_drill",
    "drill_queue",
    "drill_run",
    "drill_server",
    "drill_start",
    "held_until",
    "newest_good_backup",
    "retention_plan",
    "row_take",
    "verify_queue",
]
