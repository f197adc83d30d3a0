"""What a database error means, in one place for both engines.

- `database_unavailable`: the database cannot be reached, as opposed to a bad query. A lost or
  refused connection, a server shutting down or starting, too many connections, or on SQLite a
  database file that cannot be opened or stays locked past the busy timeout: the request did
  not fail for anything the client did, and the same request may well succeed shortly, so the
  answer is a 503 with Retry-After (config.exceptions), not a 500.
- `transient_error`: the same work may well succeed a moment later (a serialization failure, a
  deadlock, a lock or statement timeout, a lost connection, SQLite's busy database): the
  transaction manager (integrity/runner.py) tries again.
- `lost_connection`: the connection is gone and must be closed before the next attempt.
"""

import sqlite3
from collections.abc import Iterator

from django.db import InterfaceError

# SQLSTATE class 08 (connection exception), 57P01-03 (shutdown, crash, cannot connect now),
# 53300 (too many connections).
CONNECTION_SQLSTATES = frozenset(
    {"08000", "08001", "08003", "08004", "08006", "08007", "57P01", "57P02", "57P03", "53300"}
)
SQLITE_UNAVAILABLE = ("unable to open database file", "disk i/o error", "database is locked")
# Worth another attempt, besides a lost connection.
TRANSIENT_SQLSTATES = CONNECTION_SQLSTATES | {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available (lock_timeout)
    "57014",  # query_canceled (statement_timeout)
}
SQLITE_TRANSIENT = ("database is locked", "database table is locked")


def error_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what caused it, outermost first (Django wraps the driver's error)."""
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def sqlstate(err: BaseException) -> str | None:
    return getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the database cannot be reached right now."""
    for err in error_chain(exc):
        state = sqlstate(err)
        if state in CONNECTION_SQLSTATES or isinstance(err, InterfaceError):
            return True
        if _from_psycopg(err) and state is None:
            return True
        if isinstance(err, sqlite3.OperationalError) and str(err).lower().startswith(
            SQLITE_UNAVAILABLE
        ):
            return True
    return False


def _from_psycopg(err: BaseException) -> bool:
    """psycopg's OperationalError or InterfaceError (a connection that failed or broke reports
    no server SQLSTATE)."""
    return type(err).__module__.startswith("psycopg") and type(err).__name__ in (
        "OperationalError",
        "InterfaceError",
    )


def transient_error(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) is a database error that another attempt may not
    meet."""
    for err in error_chain(exc):
        state = sqlstate(err)
        if state in TRANSIENT_SQLSTATES or isinstance(err, InterfaceError):
            return True
        if isinstance(err, sqlite3.OperationalError) and any(
            text in str(err) for text in SQLITE_TRANSIENT
        ):
            return True
        if _from_psycopg(err):
            return state is None
    return False


def lost_connection(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the connection is gone."""
    for err in error_chain(exc):
        if sqlstate(err) in CONNECTION_SQLSTATES or isinstance(err, InterfaceError):
            return True
        if type(err).__module__.startswith("psycopg") and sqlstate(err) is None:
            return True
    return False
