"""Faults where the ledger meets its database, injected through Django's execute_wrapper: a
statement fails as a contended or broken server would make it fail, and no function of the code
under test is replaced."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import OperationalError, connection

# Statements that mark a place in a posting (Django quotes names alike on both engines).
BALANCE_LOCK = 'FROM "finance_accountbalance"'  # the posting locks its balance rows
RESULT_STORE = 'UPDATE "integrity_operationrecord"'  # the operation's last statement
# ... or, for an operation that claims its key with the result (Operation.claim_last), this.
RESULT_CLAIM = 'INSERT INTO "integrity_operationrecord"'
SEQUENCE_BUMP = 'UPDATE "finance_entrysequence"'  # once per posting that numbers an entry


class SerializationFailure(OperationalError):
    """What PostgreSQL raises when two transactions cannot both commit."""

    sqlstate = "40001"


@contextmanager
def statement_fault(
    sql: str,
    error: Callable[[], BaseException],
    *,
    times: int | None = None,
    after: bool = False,
) -> Iterator[list[str]]:
    """Statements containing `sql` raise `error()`: the first `times` of them, or all. With
    `after` the statement runs first, so its work is done when the fault strikes (and rolled
    back with the attempt). Yields the statements that failed."""
    failed: list[str] = []

    def wrapper(execute, statement, params, many, context):
        hit = sql in statement and (times is None or len(failed) < times)
        if hit and not after:
            failed.append(statement)
            raise error()
        result = execute(statement, params, many, context)
        if hit:
            failed.append(statement)
            raise error()
        return result

    with connection.execute_wrapper(wrapper):
        yield failed


def statements(captured: list[dict], sql: str) -> int:
    """How many of CaptureQueriesContext's `captured_queries` contain `sql`. A statement that a
    fault refused before it ran is logged without its text on PostgreSQL (psycopg has no last
    query to report): it did not run, so it does not count."""
    return sum(sql in (query["sql"] or "") for query in captured)
