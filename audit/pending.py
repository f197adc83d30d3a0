"""Audit events wait in their transaction and join the chain just before it commits.

A service records its event wherever it likes; the event is held on the database connection
(config/db/commit.py: with the savepoints that were open, so rolling a savepoint back drops its
events) and appended by the before-commit hook registered here: lock the chain head, number and
hash the events, insert them, move the head, then commit. The head lock is held only for that
instant, so audited transactions that touch unrelated rows do not queue behind each other. It
must be the last lock a transaction takes, which the backends see to (`check_deferred_now`).

Under a test's own transaction nothing ever commits, so the events are written when the
outermost block that is not the test's is left, which is where the commit would have been.
"""

from typing import Any

from django.db import DatabaseError

from audit import chain
from audit.exceptions import AuditChainError
from config.db.commit import register_before_commit

# The name events are held under (`connection.hold(HOOK, content)`).
HOOK = "audit"


def append_held(connection: Any, contents: list[dict[str, Any]]) -> None:
    try:
        chain.append(connection, contents)
    except DatabaseError:
        raise
    except Exception as exc:  # atomic() only rolls back on DatabaseError
        raise AuditChainError(f"audit events could not be appended: {exc!r}") from exc


def register() -> None:
    """Called by AuditConfig.ready."""
    register_before_commit(HOOK, append_held)
