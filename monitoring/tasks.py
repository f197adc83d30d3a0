"""django-q2 jobs of the monitoring app: thin, safe to run twice."""

from monitoring.services import database_snapshot_take, error_log_purge


def purge_error_log() -> int:
    return error_log_purge()


def take_database_snapshot() -> int:
    """Store a database and host snapshot; its id (a second run stores a second snapshot)."""
    return database_snapshot_take().pk
