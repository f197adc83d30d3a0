"""django-q2 signal receivers of the alerts app (connected in AlertsConfig.ready)."""

from typing import Any

from django_q.conf import Conf
from django_q.models import Task

from alerts.services.delivery import REPORT_TASK, REPORT_TASK_PREFIX


def report_task_on_its_last_attempt(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """pre_enqueue: the task queued to report a failed delivery starts on its last attempt.

    django-q2 counts a task's attempts in its Task row and presents a failed task again until
    Q_CLUSTER's max_attempts; integrity dead-letters the failure of the last attempt. A report
    task stands for the attempts the delivery already made, and running it again would only
    report again: so its row is written before it is queued, one attempt short of the maximum
    (the monitor adds the one it makes), and its failure is final. ack_failure (set where it is
    queued) keeps the broker from presenting it again when max_attempts is 0 (unlimited).
    """
    name = str(task.get("name") or "")
    if task.get("func") != REPORT_TASK or not name.startswith(REPORT_TASK_PREFIX):
        return
    Task.objects.create(
        id=task["id"],
        name=name,
        func=REPORT_TASK,
        args=task.get("args"),
        kwargs=task.get("kwargs"),
        started=task["started"],
        stopped=task["started"],
        success=False,
        result="queued: reports a delivery that failed for good",
        attempt_count=max(Conf.MAX_ATTEMPTS - 1, 0),
    )
