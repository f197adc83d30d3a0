from django_q.models import Schedule

from config.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="alerts.escalate_alerts",
        func="alerts.tasks.escalate_alerts",
        schedule_type=Schedule.MINUTES,
        minutes=1,
        description="Move due alerts to their next escalation step; retry failed deliveries.",
    ),
    ScheduledJob(
        name="alerts.heartbeat",
        func="alerts.tasks.heartbeat",
        schedule_type=Schedule.MINUTES,
        minutes=1,
        description="Dead-man switch: proves the scheduler and a worker run; pings the monitor.",
    ),
]
