"""A django-q2 task that failed on its last attempt becomes a dead letter (kind "task"), so it
is retried, discarded and alerted on like a failed operation."""

from typing import Any

from django_q.conf import Conf
from django_q.models import Task

from alerts import services as alerting
from integrity.models import DeadLetter
from integrity.services.deadletters import deadletter_create


def task_failure_dead_letter(task: dict[str, Any]) -> DeadLetter | None:
    """django-q2 post_execute: a failed task on its last attempt (or queued with ack_failure,
    which django-q2 never presents again) becomes a dead letter."""
    if task.get("success"):
        return None
    attempts = (
        Task.objects.filter(id=task.get("id")).values_list("attempt_count", flat=True).first() or 1
    )
    # A task queued with ack_failure is never presented again: its first failure is final.
    if not task.get("ack_failure") and Conf.MAX_ATTEMPTS > 0 and attempts < Conf.MAX_ATTEMPTS:
        return None  # the broker will present it again
    path = _task_path(task.get("func"))
    letter = deadletter_create(
        kind=DeadLetter.Kind.TASK,
        operation=path,
        payload={
            "args": list(task.get("args") or ()),
            "kwargs": dict(task.get("kwargs") or {}),
            "task_id": task.get("id"),
            "task_name": task.get("name"),
        },
        error=str(task.get("result"))[:10000],
    )
    alerting.raise_alert(
        source="tasks",
        key=path,
        severity="error",
        title=f"Task {path} failed {attempts} times and was kept as a dead letter",
        details={"dead_letter": letter.pk, "task": task.get("name")},
    )
    return letter


def _task_path(func: Any) -> str:
    """The dotted path a retry imports: django-q2 hands over a string or the function."""
    return func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"
