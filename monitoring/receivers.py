"""The error log's receivers for errors announced by the layers below it (config/signals.py),
and the task metrics' receivers for django-q2's signals."""

import logging
from datetime import datetime
from typing import Any

from django.db import DatabaseError
from django.utils import timezone
from django_q.utils import get_func_repr

from monitoring.capture import record_api_exception
from monitoring.models import ErrorSource
from monitoring.services import error_record, task_run_record

logger = logging.getLogger("ledgerguard.monitoring")
# Where the worker notes when it started running a task (django-q2's own `started` is when the
# task was queued). The task dict travels from the worker to the monitor process.
EXEC_STARTED = "ledgerguard_exec_started"


def on_api_exception(
    sender: Any, *, exc: BaseException, context: dict[str, Any], **kw: Any
) -> None:
    record_api_exception(exc=exc, context=context)  # never raises


def on_operation_failed(
    sender: Any, *, exc: BaseException, name: str, payload: dict[str, Any], **kw: Any
) -> None:
    error_record(exc=exc, source=ErrorSource.OPERATION, operation_name=name, payload=payload)


def on_task_start(sender: Any, func: Any, task: dict[str, Any], **kw: Any) -> None:
    """pre_execute, in the worker, just before the call."""
    task[EXEC_STARTED] = timezone.now()


def on_task_done(sender: Any, task: dict[str, Any], **kw: Any) -> None:
    """post_execute, in the monitor process once the result is saved: the run goes into its
    minute's task bucket. Never raises: a metric is not worth a lost task result."""
    stopped = task.get("stopped")
    if not isinstance(stopped, datetime):
        return
    began = task.get(EXEC_STARTED)
    queued = task.get("started")
    began = began if isinstance(began, datetime) else queued
    if not isinstance(began, datetime):
        return
    waited = (began - queued).total_seconds() if isinstance(queued, datetime) else 0.0
    try:
        task_run_record(
            func=get_func_repr(task.get("func")) or "?",
            success=bool(task.get("success")),
            finished=stopped,
            run_seconds=max((stopped - began).total_seconds(), 0.0),
            wait_seconds=max(waited, 0.0),
        )
    except DatabaseError as exc:
        logger.warning("task metrics not written: %s", exc)
