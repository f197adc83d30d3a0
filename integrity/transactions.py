"""The transaction manager: all-or-nothing operations, retried on transient faults.

    run_operation(operation, steps, payload, idempotency_key)

- An operation is an `Operation` object (integrity/operations.py): a stable name, its steps as
  functions, and the payload keys that hold ids of rows. Apps declare theirs once and register
  them when ready; `run_operation` takes the object (or a registered name, or a name and ad hoc
  steps). Each step gets the `OperationContext`; `ctx.previous` is what the step before it
  returned, and the last step's return value is the result. No step is found by its name.
- All steps run in one database transaction, each in its own savepoint (a single step needs
  none: the transaction is its savepoint).
- Transient errors (serialization failure, deadlock, lock timeout, lost or refused
  connection, SQLite "database is locked") are retried with exponential backoff and full
  jitter, up to OPERATION_MAX_ATTEMPTS. Business-rule errors (DomainError) are never retried:
  they roll back and reach the caller unchanged.
- Steps may register compensations (ctx.on_rollback) for side effects outside the database;
  they run in reverse order whenever an attempt fails.
- Every operation has an idempotency key (the caller's, or one made up for this call). The key
  is claimed by the transaction's first statement (a row in OperationRecord, which gets the
  result at the end; a hot operation may claim it with the result in its last statement
  instead, `Operation.claim_last`), so a concurrent run with the same key waits and then
  returns the first result, and a retry after a COMMIT whose answer was lost finds the
  committed result instead of running twice.
- When it cannot finish (transient errors exhausted, or an unexpected error), the transaction
  is rolled back, the error is written to the error log, a dead letter holding the name,
  payload and key is created outside the rolled-back transaction, and an alert is raised.
  A dead letter is retried from its stored name and payload through the registry.

The parts: integrity/operations.py (what an operation is; the registry), integrity/runner.py
(attempts, retries, idempotency; knows no dead letters, so the dead-letter queue can retry
through it) and this module, which keeps what gives up as a dead letter.
"""

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import DatabaseError

from integrity.exceptions import (
    OperationFailed,
    OperationKeyReused,
    OperationUnavailable,
    UnknownOperation,
)
from integrity.operations import (
    Operation,
    OperationContext,
    Step,
    operation_get,
    operation_register,
    payload_references,
)
from integrity.runner import (
    ISOLATION_LEVELS,
    backoff,
    decode_result,
    encode_result,
    is_transient,
    operation_run,
    payload_hash,
    set_isolation,
)
from integrity.services import deadletter_create

logger = logging.getLogger("ledgerguard.operations")

__all__ = [
    "ISOLATION_LEVELS",
    "Operation",
    "OperationContext",
    "OperationFailed",
    "OperationKeyReused",
    "OperationUnavailable",
    "Step",
    "UnknownOperation",
    "backoff",
    "decode_result",
    "encode_result",
    "is_transient",
    "operation_get",
    "operation_register",
    "payload_hash",
    "payload_references",
    "register_operation",
    "run_operation",
    "set_isolation",
]


def register_operation(
    name: str, *steps: Step, references: Mapping[str, str] | None = None
) -> Operation:
    """Declare and register an operation from its name and steps (see `Operation`)."""
    return operation_register(Operation(name, steps=tuple(steps), references=references or {}))


def run_operation(
    operation: Operation | str,
    steps: Sequence[Step] | None = None,
    payload: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    *,
    max_attempts: int | None = None,
    isolation: str | None = None,
    dead_letter: bool = True,
) -> Any:
    """Run the operation all-or-nothing, retried; return its last step's result.

    `operation` is an `Operation`, or a name: with `steps` an ad hoc operation, without them
    the one registered under that name. Must be called outside any transaction (it owns it).
    `payload` must be JSON: it is what a dead letter keeps to run the operation again.
    `isolation` ("SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED") applies on PostgreSQL.
    """
    if isinstance(operation, Operation):
        if steps is not None:
            raise TypeError("steps come with the Operation; pass either, not both")
    elif steps is not None:
        operation = Operation(operation, steps=tuple(steps))
    else:
        operation = operation_get(operation)
    return operation_run(
        operation,
        payload,
        idempotency_key,
        max_attempts=max_attempts,
        isolation=isolation,
        keep=_keep_as_dead_letter if dead_letter else None,
    )


def _keep_as_dead_letter(ctx: OperationContext, exc: BaseException, trace: str) -> int | None:
    """Written outside the rolled-back transaction; returns the letter's id."""
    try:
        letter = deadletter_create(
            operation=ctx.name,
            payload=ctx.payload,
            idempotency_key=ctx.idempotency_key,
            error=f"{type(exc).__name__}: {exc}",
            traceback=trace,
        )
    except DatabaseError:
        # The database itself is unreachable: this log line is all that is left, so it
        # carries everything a dead letter would have.
        logger.exception(
            "LOST OPERATION %s: could not write its dead letter; payload=%s key=%s\n%s",
            ctx.name,
            json.dumps(ctx.payload),
            ctx.idempotency_key,
            trace,
        )
        return None
    return letter.pk
