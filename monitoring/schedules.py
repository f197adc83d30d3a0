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
        name="monitoring.database_snapshot",
        func="monitoring.tasks.take_database_snapshot",
        schedule_type=Schedule.MINUTES,
        minutes=settings.MONITORING_SNAPSHOT_MINUTES,
        description="Store a snapshot of the database's and the host's figures.",
    ),
]
