"""django-q2 jobs of the monitoring app: thin, safe to run twice."""

from monitoring.services import error_log_purge


def purge_error_log() -> int:
    return error_log_purge()
