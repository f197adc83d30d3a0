from django.conf import settings
from django_q.models import Schedule

from config.schedules import ScheduledJob

SCHEDULES = [
    ScheduledJob(
        name="audit.checkpoint",
        func="audit.tasks.checkpoint",
        schedule_type=Schedule.CRON,
        cron=settings.AUDIT_CHECKPOINT_CRON,
        description="Sign the audit chain head; store it in the database and in BACKUP_DIR.",
    ),
    ScheduledJob(
        name="audit.publish_checkpoints",
        func="audit.tasks.publish_checkpoints",
        schedule_type=Schedule.MINUTES,
        minutes=5,
        description="Send signed checkpoints to the witness (AUDIT_CHECKPOINT_WITNESS_*); retry.",
    ),
    ScheduledJob(
        name="audit.verify_chain",
        func="audit.tasks.verify_chain",
        schedule_type=Schedule.CRON,
        cron=settings.AUDIT_VERIFY_CRON,
        description="Verify the whole audit chain and its checkpoints; alert when broken.",
    ),
    ScheduledJob(
        name="audit.summarize_repeats",
        func="audit.tasks.summarize_repeats",
        schedule_type=Schedule.MINUTES,
        minutes=1,
        description="Write one summary event per closed window of counted repeats (bogus "
        "tokens, refused logins, denied requests).",
    ),
]
