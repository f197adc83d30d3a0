"""The error log's receivers for errors announced by the layers below it (config/signals.py)."""

from typing import Any

from monitoring.capture import record_api_exception
from monitoring.models import ErrorSource
from monitoring.services import error_record


def on_api_exception(
    sender: Any, *, exc: BaseException, context: dict[str, Any], **kw: Any
) -> None:
    record_api_exception(exc=exc, context=context)  # never raises


def on_operation_failed(
    sender: Any, *, exc: BaseException, name: str, payload: dict[str, Any], **kw: Any
) -> None:
    error_record(exc=exc, source=ErrorSource.OPERATION, operation_name=name, payload=payload)
