"""Which database errors mean "the database cannot be reached", as opposed to a bad query.

A lost or refused connection, a server shutting down or starting, too many connections, or on
SQLite a database file that cannot be opened or stays locked past the busy timeout: the request
did not fail for anything the client did, and the same request may well succeed shortly, so the
answer is a 503 with Retry-After (config.exceptions), not a 500.
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
        # psycopg reports a connection that failed or broke without a server SQLSTATE.
        if (
            type(err).__module__.startswith("psycopg")
            and type(err).__name__ in ("OperationalError", "InterfaceError")
            and state is None
        ):
            return True
        if isinstance(err, sqlite3.OperationalError) and str(err).lower().startswith(
            SQLITE_UNAVAILABLE
        ):
            return True
    return False
