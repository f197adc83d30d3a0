"""django-q2 jobs of the integrity app: thin, safe to run twice; and the hook through which a
task that failed for good becomes a dead letter."""

import logging
from datetime import timedelta
from typing import Any

from django.utils import timezone

from integrity import services
from integrity.idempotency import idempotency_purge_expired
from integrity.models import CheckRun

logger = logging.getLogger("ledgerguard.deadletters")


def purge_expired_idempotency_keys() -> int:
    return idempotency_purge_expired()


def retry_due_dead_letters() -> dict[str, int]:
    return services.deadletter_retry_due()


def check_dead_letter_queue() -> dict[str, Any]:
    return services.deadletter_queue_check()


def purge_operation_records() -> int:
    return services.operation_records_purge()


def run_checks(
    tags: list[str] | None = None, window_hours: int | None = None, schedule: str = ""
) -> str:
    """A scheduled run; `window_hours` narrows windowed checks to recent postings."""
    services.checkruns_abandon_stale()
    since = timezone.now() - timedelta(hours=window_hours) if window_hours else None
    run = services.checks_run(trigger="schedule", tags=tags, since=since, schedule=schedule)
    return f"check run #{run.pk}: {run.status} {run.summary}"


def execute_check_run(run_id: int) -> str:
    """A run queued from the API or the admin. Safe to run twice: the second finds it taken."""
    if not CheckRun.objects.filter(pk=run_id, status=CheckRun.Status.QUEUED).exists():
        return f"check run #{run_id} was already taken"
    run = services.checkrun_execute(run_id=run_id)
    return f"check run #{run.pk}: {run.status}"


def purge_check_runs() -> int:
    return services.checkruns_purge()


def on_task_executed(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """django-q2's post_execute (connected in IntegrityConfig.ready): tasks that exhausted
    their attempts land in the dead-letter queue."""
    try:
        services.task_failure_dead_letter(task)
    except Exception:  # the monitor process must keep running
        logger.exception("Could not dead-letter task %s", task.get("name"))
