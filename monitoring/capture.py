"""Where errors are caught: requests (middleware and the API exception handler) and tasks.

Each capture point reads what it can cheaply and safely, and hands it to
monitoring.services.error_record, which sanitizes, groups, stores and alerts. Nothing here
may raise: it all runs while another exception is being handled.
"""

import json
import sys
from typing import Any

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.core.files.uploadedfile import UploadedFile
from django.http import Http404, HttpRequest, RawPostDataException
from django.http.multipartparser import MultiPartParserError
from django_q.utils import get_func_repr
from rest_framework.exceptions import APIException

from config.sanitize import REDACTED
from monitoring.models import ErrorEvent, ErrorSource
from monitoring.services import error_record

MAX_BODY_BYTES = 64 * 1024
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# What reading a body can raise (bad encoding, a stream already read, a broken upload).
_BODY_ERRORS = (
    RawPostDataException,
    ValueError,
    SuspiciousOperation,
    MultiPartParserError,
    OSError,
    RecursionError,
    APIException,
)
# Django answers these itself with 400/403/404; they are not unhandled errors.
NOT_ERRORS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation, MultiPartParserError)


def _flat(query: Any) -> dict[str, Any]:
    """A QueryDict as a plain dict: single values as themselves, repeated ones as lists."""
    return {k: (v[0] if len(v) == 1 else v) for k, v in query.lists()}


def _hide_sensitive(body: Any, request: Any) -> Any:
    """The fields a view marked with Django's `sensitive_post_parameters` (a second-factor
    code, which the key names the sanitizer knows do not cover), or all of them, redacted."""
    sensitive = getattr(request, "sensitive_post_parameters", None)
    if not sensitive or not isinstance(body, dict):
        return body
    return {k: REDACTED if sensitive == "__ALL__" or k in sensitive else v for k, v in body.items()}


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def request_payload(request: HttpRequest) -> dict[str, Any]:
    """Query parameters, and a form or JSON body under 64 KB (unsanitized: the service does it)."""
    payload: dict[str, Any] = {}
    try:
        payload["query"] = _flat(request.GET)
        length = _content_length(request)
        content_type = request.content_type or ""
        if not length:
            return payload
        if length > MAX_BODY_BYTES:
            payload["body"] = f"[{length} bytes not kept]"
        elif _is_json(content_type):
            payload["body"] = _hide_sensitive(json.loads(request.body), request)
        elif content_type in FORM_TYPES:
            payload["body"] = _hide_sensitive(_flat(request.POST), request)
            if request.FILES:
                files = request.FILES.values()
                payload["files"] = [f.name for f in files if isinstance(f, UploadedFile)]
        else:
            payload["body"] = f"[{content_type or 'unknown'} body, {length} bytes not kept]"
    except _BODY_ERRORS:
        payload["body"] = "[unreadable]"
    return payload


def api_request_payload(request: Any) -> dict[str, Any]:
    """The same for a DRF request, whose body its parsers may already have consumed."""
    payload: dict[str, Any] = {}
    try:
        payload["query"] = _flat(request.query_params)
        length = _content_length(request._request)
        if not length:
            return payload
        if length > MAX_BODY_BYTES:
            payload["body"] = f"[{length} bytes not kept]"
        else:
            data = request.data
            body = _flat(data) if hasattr(data, "lists") else data
            payload["body"] = _hide_sensitive(body, request)
    except _BODY_ERRORS:
        payload["body"] = "[unreadable]"
    return payload


def record_request_exception(*, request: HttpRequest, exc: BaseException) -> ErrorEvent | None:
    if isinstance(exc, NOT_ERRORS) or getattr(request, "_error_recorded", False):
        return None
    request._error_recorded = True  # type: ignore[attr-defined]  # once per request
    match = getattr(request, "resolver_match", None)
    return error_record(
        exc=exc,
        source=ErrorSource.REQUEST,
        request_id=getattr(request, "request_id", ""),
        user=getattr(request, "user", None),
        route=(match.route if match is not None and match.route else request.path),
        method=request.method or "",
        payload=request_payload(request),
    )


def record_api_exception(*, exc: BaseException, context: dict[str, Any]) -> ErrorEvent | None:
    """From the API exception handler's 500 branch: the route is the view's name."""
    request = context.get("request")
    view = context.get("view")
    # The user DRF authenticated, if it got that far; reading request.user would authenticate
    # again, and authentication may be what failed. Without it, the request context's user.
    user = vars(request).get("_user") if request is not None else None
    return error_record(
        exc=exc,
        source=ErrorSource.REQUEST,
        request_id=getattr(request, "request_id", "") if request is not None else "",
        user=user,
        route=type(view).__name__ if view is not None else "",
        method=getattr(request, "method", "") or "",
        payload=api_request_payload(request) if request is not None else None,
    )


def record_failed_task(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """django_q.signals.post_execute receiver (in the cluster's monitor process).

    django-q2 keeps no exception object, only the result text "<message> : <traceback>";
    error_record reads the type, message and frames back from that text.
    """
    if task.get("success", True):
        return
    error_record(
        source=ErrorSource.TASK,
        task_name=str(task.get("name") or ""),
        traceback_text=str(task.get("result") or ""),
        payload={
            "func": get_func_repr(task.get("func")),
            "task_id": task.get("id"),
            "group": task.get("group"),
            "cluster": task.get("cluster"),
            "args": task.get("args"),
            "kwargs": task.get("kwargs"),
        },
    )


def record_uncaught_exception(
    sender: Any, request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """got_request_exception: what no view caught, middleware included (views are usually
    recorded first by ErrorCaptureMiddleware; the request is marked so it counts once)."""
    exc = sys.exc_info()[1]
    if request is not None and exc is not None:
        record_request_exception(request=request, exc=exc)
