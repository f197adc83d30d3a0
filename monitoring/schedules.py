from django.conf import settings
from django_q.models import Schedule

from config.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="monitoring.purge_error_log",
        func="monitoring.tasks.purge_error_log",
        schedule_type=Schedule.CRON,
        cron="30 3 * * *",
        description="Delete error-log events past their retention age or over the per-group cap.",
    ),
    ScheduledJob(
        name="monitoring.evaluate_thresholds",
        func="monitoring.tasks.evaluate_thresholds",
        schedule_type=Schedule.MINUTES,
        minutes=1,
        description="Read the metrics the thresholds watch; raise or resolve their alerts.",
    ),
    ScheduledJob(
        name="monitoring.daily_stats",
        func="monitoring.tasks.daily_stats",
        schedule_type=Schedule.CRON,
        cron="15 0 * * *",
        description="Yesterday's statistics per route and task (p50/p95/p99, counts, errors).",
    ),
    ScheduledJob(
        name="monitoring.purge_metrics",
        func="monitoring.tasks.purge_metrics",
        schedule_type=Schedule.CRON,
        cron="45 3 * * *",
        description="Delete minute buckets and daily statistics past their retention age.",
    ),
    ScheduledJob(
        name="monitoring.database_snapshot",
        func="monitoring.tasks.take_database_snapshot",
        schedule_type=Schedule.MINUTES,
        minutes=settings.MONITORING_SNAPSHOT_MINUTES,
        description="Store a snapshot of the database's and the host's figures.",
    ),
]
