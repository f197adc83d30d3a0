"""Logging filters named in settings.LOGGING, and the gunicorn access logger."""

import logging
import re
from typing import Any

from gunicorn import glogging

# Paths whose next segment is a bearer secret: a signed acknowledge link works for whoever
# holds it, so neither Django's "Gone: /alerts/ack/<token>/" line nor an access log names it.
_SECRET_PATH = re.compile(r"(/alerts/ack/)[^/\s\"'?#]+")
REDACTED_SEGMENT = "[redacted]"


def redact_secret_paths(text: str) -> str:
    return _SECRET_PATH.sub(rf"\g<1>{REDACTED_SEGMENT}", text)


class ClientErrorWithoutTraceback(logging.Filter):
    """A 4xx answer is one line: a refusal or a client's mistake, not a fault in our code.

    Django logs a PermissionDenied (403) and a SuspiciousOperation (400) with the exception's
    traceback attached; a 5xx keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True


# URL parameters whose values are secrets, by name (the ack link's `token`).
_SECRET_PARAMETER = re.compile(r"token|secret|key|signature|password")


class SecretPaths(logging.Filter):
    """Masks secrets in the paths a record names: the values of the request's secret URL
    parameters, and signed acknowledge links whatever the record. On the loggers that name
    request paths (django.request, django.security.csrf, django.server), so that the record
    itself is clean for every handler; on the console handler too, for any other."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _secret_parameters(getattr(record, "request", None))
        if isinstance(record.msg, str):
            record.msg = _redacted(record.msg, secrets)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(a, secrets) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redacted(v, secrets) for k, v in record.args.items()}
        return True


def _secret_parameters(request: Any) -> list[str]:
    match = getattr(request, "resolver_match", None)
    kwargs = getattr(match, "kwargs", None) or {}
    return [
        str(value)
        for name, value in kwargs.items()
        if value and len(str(value)) >= 8 and _SECRET_PARAMETER.search(name.lower())
    ]


def _redacted(value: Any, secrets: list[str] | None = None) -> Any:
    if not isinstance(value, str):
        return value
    for secret in secrets or ():
        value = value.replace(secret, REDACTED_SEGMENT)
    return redact_secret_paths(value)


class GunicornLogger(glogging.Logger):
    """gunicorn's logger (gunicorn.conf.py `logger_class`), its access lines without signed
    links: in the request line, the path, the referrer (the page after a click on a link) and
    any request header."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {name: _redacted(value) for name, value in atoms.items()}
