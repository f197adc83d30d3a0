from django.conf import settings
from django_q.models import Schedule

from config.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="integrity.purge_expired_idempotency_keys",
        func="integrity.tasks.purge_expired_idempotency_keys",
        schedule_type=Schedule.HOURLY,
        description="Delete stored Idempotency-Key results past their expiry.",
    ),
    ScheduledJob(
        name="integrity.retry_due_dead_letters",
        func="integrity.tasks.retry_due_dead_letters",
        schedule_type=Schedule.MINUTES,
        minutes=1,
        description="Retry pending dead letters whose backoff has passed.",
    ),
    ScheduledJob(
        name="integrity.check_dead_letter_queue",
        func="integrity.tasks.check_dead_letter_queue",
        schedule_type=Schedule.MINUTES,
        minutes=5,
        description="Alert when the dead-letter queue is too long or too old.",
    ),
    ScheduledJob(
        name="integrity.purge_operation_records",
        func="integrity.tasks.purge_operation_records",
        schedule_type=Schedule.CRON,
        cron="15 3 * * *",
        description="Delete operation results older than OPERATION_RECORD_RETENTION_DAYS.",
    ),
    ScheduledJob(
        name="checks.integrity",
        func="integrity.tasks.run_checks",
        cron=settings.CHECK_INTEGRITY_CRON,
        kwargs={"tags": ["integrity", "audit"], "schedule": "checks.integrity"},
        description="Integrity checks: references, constraints, states, scheduler, queues.",
    ),
    ScheduledJob(
        name="checks.finance_hourly",
        func="integrity.tasks.run_checks",
        cron=settings.CHECK_FINANCE_CRON,
        kwargs={
            "tags": ["finance"],
            "window_hours": settings.CHECK_FINANCE_WINDOW_HOURS,
            "schedule": "checks.finance_hourly",
        },
        description="Financial checks; per-entry checks over recent postings only.",
    ),
    ScheduledJob(
        name="checks.reconciliation",
        func="integrity.tasks.run_checks",
        cron=settings.CHECK_RECONCILIATION_CRON,
        kwargs={"tags": ["finance"], "schedule": "checks.reconciliation"},
        description="Full financial reconciliation: every financial check over all data.",
    ),
    ScheduledJob(
        name="checks.audit_hourly",
        func="integrity.tasks.run_checks",
        cron=settings.CHECK_AUDIT_CRON,
        kwargs={"tags": ["audit"], "schedule": "checks.audit_hourly"},
        description="Audit checks: signed checkpoints keep up with the trail; verification.",
    ),
    ScheduledJob(
        name="checks.purge_runs",
        func="integrity.tasks.purge_check_runs",
        cron="45 3 * * *",
        description="Delete check runs older than CHECK_RUN_RETENTION_DAYS.",
    ),
]
