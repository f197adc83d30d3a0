"""The backups control's scheduled jobs: backup plus verification daily at 03:00, a restore
drill weekly, pruning daily, and the backups checks hourly. All visible and pausable in
django-q2's admin (Integrity > Scheduled jobs)."""

from django.conf import settings
from django_q.models import Schedule

from config.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="backups.daily",
        func="backups.tasks.backup_and_verify",
        schedule_type=Schedule.CRON,
        cron=settings.BACKUP_CRON,
        description="Take a backup of the database and verify it.",
    ),
    ScheduledJob(
        name="backups.drill_weekly",
        func="backups.tasks.restore_drill",
        schedule_type=Schedule.CRON,
        cron=settings.BACKUP_DRILL_CRON,
        description="Restore the newest backup into a scratch database and check it.",
    ),
    ScheduledJob(
        name="backups.prune",
        func="backups.tasks.prune",
        schedule_type=Schedule.CRON,
        cron=settings.BACKUP_PRUNE_CRON,
        description="Apply retention (daily, weekly, monthly), never the newest verified backup.",
    ),
    ScheduledJob(
        name="checks.backups",
        func="integrity.tasks.run_checks",
        schedule_type=Schedule.CRON,
        cron="20 * * * *",
        kwargs={"tags": ["backups"], "schedule": "checks.backups"},
        description="Backups checks: a recent verified backup, a recent passed drill.",
    ),
]
