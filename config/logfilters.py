"""Logging filters named in settings.LOGGING."""

import logging


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
