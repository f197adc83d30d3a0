"""The monitoring services: the error log (errors.py), request metrics (metrics.py) and
database and host snapshots (snapshots.py)."""

from monitoring.services.errors import (
    ALERT_SOURCE,
    TASK_FAILURE_TYPE,
    error_group_ignore,
    error_group_reopen,
    error_group_resolve,
    error_log_purge,
    error_record,
)
from monitoring.services.metrics import request_buckets_write
from monitoring.services.snapshots import database_snapshot_take

__all__ = [
    "ALERT_SOURCE",
    "TASK_FAILURE_TYPE",
    "database_snapshot_take",
    "error_group_ignore",
    "error_group_reopen",
    "error_group_resolve",
    "error_log_purge",
    "error_record",
    "request_buckets_write",
]
