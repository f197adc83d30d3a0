from django_q.models import Schedule

from integrity.scheduling import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="integrity.purge_expired_idempotency_keys",
        func="integrity.tasks.purge_expired_idempotency_keys",
        schedule_type=Schedule.HOURLY,
        description="Delete stored Idempotency-Key results past their expiry.",
    ),
]
