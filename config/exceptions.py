"""The one API exception handler, and the error pages.

Every error leaves the API as {"error": {"code": ..., "message": ..., "fields": {...}}}. The
base `DomainError` is in config/errors.py: the token authentication that rest_framework.views
loads imports it, so it must not need this module.
"""

import logging
import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404, HttpResponse, JsonResponse
from django.template import loader
from django.template.response import TemplateResponse
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import page_not_found, server_error
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from config import signals
from config.db.errors import database_unavailable
from config.errors import DomainError, error_body, guard_refusal
from config.throttling import retry_after

logger = logging.getLogger("ledgerguard.api")

# What a 503 asks the client to wait before trying again (Retry-After, seconds).
RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE = (
    "database.unavailable",
    "The database cannot be reached right now; nothing was changed. Retry shortly.",
)


def _flatten(detail: Any) -> Any:
    """DRF ErrorDetail trees become plain lists/dicts of strings."""
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


_DRF_CODES: list[tuple[type[drf.APIException], str]] = [
    (drf.NotAuthenticated, "auth.not_authenticated"),
    (drf.AuthenticationFailed, "auth.failed"),
    (drf.PermissionDenied, "permission_denied"),
    (drf.NotFound, "not_found"),
    (drf.MethodNotAllowed, "method_not_allowed"),
    (drf.NotAcceptable, "not_acceptable"),
    (drf.UnsupportedMediaType, "unsupported_media_type"),
    (drf.Throttled, "throttled"),
    (drf.ParseError, "parse_error"),
]


def _domain_or_django_error(exc: Exception) -> Response | None:
    """Our domain errors, an unreachable database and Django's own errors."""
    if isinstance(exc, DomainError):
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if exc.http_status == 503 else None
        return Response(
            error_body(exc.code, exc.message, exc.fields), status=exc.http_status, headers=headers
        )
    if database_unavailable(exc):
        logger.warning("Database unavailable: %s", exc)
        return Response(
            error_body(*DATABASE_UNAVAILABLE),
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {}
        message = "; ".join(exc.messages) if not fields else "Invalid input."
        return Response(error_body("invalid", message, _flatten(fields)), status=400)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("payload_too_large", "The request body is too large."), status=413
        )
    if isinstance(exc, SuspiciousOperation):
        logger.warning("Suspicious request refused: %s", exc)
        return Response(error_body("bad_request", "The request was refused."), status=400)
    if isinstance(exc, IntegrityError):
        # The database refused what the services let through: a race (two requests creating
        # the same key) or a guard trigger. Never a 500; the transaction is rolled back.
        logger.warning("Integrity error answered as a conflict: %s", exc)
        refusal = guard_refusal(exc)
        if refusal is not None:
            return Response(error_body(refusal.code, refusal.message), status=422)
        return Response(
            error_body("conflict", "The request conflicts with the current data; retry."),
            status=409,
        )
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        return Response(error_body("not_found", "Not found."), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(
            error_body("permission_denied", "You do not have permission to do this."), status=403
        )
    return None


def _drf_error(exc: Exception) -> Response | None:
    """REST framework's errors: bad input, authentication, throttling and the like."""
    if isinstance(exc, drf.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            fields = _flatten(detail)
            message = "Invalid input."
            nfe = fields.get("non_field_errors")
            if nfe and len(fields) == 1:
                message = " ".join(nfe)
        else:
            fields = {"non_field_errors": _flatten(detail)}
            message = " ".join(fields["non_field_errors"])
        return Response(error_body("invalid", message, fields), status=400)
    if isinstance(exc, drf.APIException):
        code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), "error")
        headers = {}
        if auth_header := getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = auth_header
        if isinstance(exc, drf.Throttled):
            headers["Retry-After"] = str(retry_after(getattr(exc, "wait", None)))
        return Response(error_body(code, str(exc.detail)), status=exc.status_code, headers=headers)
    return None


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    set_rollback()
    answer = _domain_or_django_error(exc) or _drf_error(exc)
    if answer is not None:
        return answer
    # Not ours: record it in the error log, log with the stack and answer in the documented
    # shape, never an HTML 500.
    if not signals.api_exception.send_robust(sender=None, exc=exc, context=context):
        logger.error("No error log is connected; the error is only in this log")
    view = context.get("view")
    logger.exception("Unhandled error in %s", type(view).__name__ if view else "API view")
    return Response(
        error_body("internal_error", "An internal error occurred; it has been logged."),
        status=500,
    )


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


@csrf_exempt  # or a POST without a CSRF token would get Django's HTML 403 page instead
def api_not_found(request, *args, **kwargs):
    """Unknown paths under /api/ answer JSON, for every method, even with DEBUG on."""
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: the API's error shape under /api/, Django's page elsewhere."""
    if _is_api(request):
        message = f"CSRF verification failed: {reason}" if reason else "CSRF verification failed."
        return JsonResponse(error_body("permission_denied", message), status=403)
    return django_csrf_failure(request, reason)


def database_unavailable_response(request) -> HttpResponse:
    """503 with Retry-After: JSON under /api/, a short page elsewhere. Reads nothing from the
    database (no request context: the session and user would need it)."""
    if _is_api(request):
        response: HttpResponse = JsonResponse(error_body(*DATABASE_UNAVAILABLE), status=503)
    else:
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def handler404(request, exception=None):
    if _is_api(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return page_not_found(request, exception)


def handler500(request):
    # Django calls this while handling the exception, from any view or middleware.
    exc = sys.exc_info()[1]
    if exc is not None and database_unavailable(exc):
        logger.warning("Database unavailable: %s", exc)
        return database_unavailable_response(request)
    if _is_api(request):
        return JsonResponse(
            error_body("internal_error", "An internal error occurred; it has been logged."),
            status=500,
        )
    return server_error(request)


def lockout_response(request, response=None, credentials=None):
    """django-axes' answer to a locked-out login: 429, in the API's error shape under /api/."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    message = f"Too many failed logins. Try again in {minutes} minutes, or ask an administrator."
    answer: HttpResponse
    if request.path.startswith("/api/"):
        answer = JsonResponse(
            error_body("auth.locked_out", message),
            status=429,
            json_dumps_params={"separators": (",", ":")},
        )
    else:
        answer = TemplateResponse(
            request, "registration/locked_out.html", {"message": message}, status=429
        ).render()
    answer["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return answer
