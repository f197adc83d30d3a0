"""The monitoring services: the error log (errors.py), request metrics (metrics.py) and
database and host snapshots (snapshots.py)."""

from monitoring.services.daily import Purged, daily_stats_compute, metrics_purge
from monitoring.services.errors import (
    ALERT_SOURCE,
    TASK_FAILURE_TYPE,
    error_group_ignore,
    error_group_reopen,
    error_group_resolve,
    error_log_purge,
    error_record,
)
from monitoring.services.metrics import request_buckets_write, task_run_record
from monitoring.services.snapshots import database_snapshot_take
from monitoring.services.thresholds import threshold_delete, threshold_save, thresholds_evaluate

__all__ = [
    "ALERT_SOURCE",
    "TASK_FAILURE_TYPE",
    "Purged",
    "daily_stats_compute",
    "database_snapshot_take",
    "error_group_ignore",
    "error_group_reopen",
    "error_group_resolve",
    "error_log_purge",
    "error_record",
    "metrics_purge",
    "request_buckets_write",
    "task_run_record",
    "threshold_delete",
    "threshold_save",
    "thresholds_evaluate",
]
