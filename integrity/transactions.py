"""The transaction manager: all-or-nothing operations, retried on transient faults.

    run_operation(name, steps, payload, idempotency_key)

- All steps run in one database transaction, each in its own savepoint.
- Transient errors (serialization failure, deadlock, lock timeout, lost or refused
  connection, SQLite "database is locked") are retried with exponential backoff and full
  jitter, up to OPERATION_MAX_ATTEMPTS. Business-rule errors (DomainError) are never retried:
  they roll back and reach the caller unchanged.
- Steps may register compensations (ctx.on_rollback) for side effects outside the database;
  they run in reverse order whenever an attempt fails.
- Every operation has an idempotency key (the caller's, or one made up for this call). The key
  is claimed by the transaction's first statement (a row in OperationRecord, which gets the
  result at the end), so a concurrent run with the same key waits and then returns the first
  result, and a retry after a COMMIT whose answer was lost finds the committed result instead
  of running twice.
- When it cannot finish (transient errors exhausted, or an unexpected error), the transaction
  is rolled back, the error is written to the error log, a dead letter holding the name,
  payload and key is created outside the rolled-back transaction, and an alert is raised.
"""

import hashlib
import json
import logging
import random
import sqlite3
import time
import traceback as tb
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, InterfaceError, connection, transaction
from django.db.models import Model
from django.http import Http404

from config import signals
from config.db.errors import error_chain, sqlstate
from config.exceptions import DomainError, guard_refusal

logger = logging.getLogger("ledgerguard.operations")

# SQLSTATEs worth another attempt: the same work may well succeed a moment later.
TRANSIENT_SQLSTATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available (lock_timeout)
    "57014",  # query_canceled (statement_timeout)
    "57P01",  # admin_shutdown (pg_terminate_backend)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now
    "53300",  # too_many_connections
    "08000",
    "08001",
    "08003",
    "08004",
    "08006",  # connection exceptions
}
CONNECTION_SQLSTATES = {"57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006"}
SQLITE_TRANSIENT = ("database is locked", "database table is locked")


class OperationFailed(DomainError):
    """The operation could not finish; it was rolled back and kept as a dead letter."""

    code = "operation.failed"
    http_status = 500


class OperationUnavailable(OperationFailed):
    """Transient faults outlasted the retries; the operation is kept for a later retry."""

    code = "operation.unavailable"
    http_status = 503


class OperationKeyReused(DomainError):
    code = "operation.key_reused"
    http_status = 409


@dataclass
class OperationContext:
    name: str
    payload: dict[str, Any]
    idempotency_key: str
    attempt: int = 1
    results: dict[str, Any] = field(default_factory=dict)
    compensations: list[Callable[[], None]] = field(default_factory=list)

    def on_rollback(self, compensation: Callable[[], None]) -> None:
        """Undo a side effect outside the database if this attempt fails."""
        self.compensations.append(compensation)


Step = Callable[[OperationContext], Any]
_REGISTRY: dict[str, list[Step]] = {}


def register_operation(name: str, *steps: Step) -> None:
    """Declare an operation's steps, so that a dead letter can be retried from name + payload."""
    _REGISTRY[name] = list(steps)


class UnknownOperation(LookupError):
    """No steps are registered under this name (in this process)."""


def operation_steps(name: str) -> list[Step]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownOperation(f"no operation registered as {name!r}") from None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DomainError):
        return False
    for err in error_chain(exc):
        if sqlstate(err) in TRANSIENT_SQLSTATES:
            return True
        if isinstance(err, InterfaceError):
            return True  # the connection is gone
        if isinstance(err, sqlite3.OperationalError) and any(
            text in str(err) for text in SQLITE_TRANSIENT
        ):
            return True
        if type(err).__module__.startswith("psycopg") and type(err).__name__ in (
            "OperationalError",
            "InterfaceError",
        ):
            return sqlstate(err) is None or sqlstate(err) in TRANSIENT_SQLSTATES
    return False


def _lost_connection(exc: BaseException) -> bool:
    for err in error_chain(exc):
        if sqlstate(err) in CONNECTION_SQLSTATES or isinstance(err, InterfaceError):
            return True
        if type(err).__module__.startswith("psycopg") and sqlstate(err) is None:
            return True
    return False


def backoff(attempt: int, *, base: float | None = None, cap: float | None = None) -> float:
    """Full jitter: a random delay up to base * 2**(attempt-1), capped."""
    base = settings.OPERATION_RETRY_BASE_SECONDS if base is None else base
    cap = settings.OPERATION_RETRY_MAX_SECONDS if cap is None else cap
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def payload_hash(name: str, payload: dict[str, Any]) -> str:
    text = json.dumps([name, payload], sort_keys=True, cls=DjangoJSONEncoder)
    return hashlib.sha256(text.encode()).hexdigest()


def encode_result(value: Any) -> Any:
    """JSON for the stored result; model instances are stored as a reference."""
    if isinstance(value, Model):
        return {"__model__": value._meta.label_lower, "pk": value.pk}
    if isinstance(value, list | tuple):
        return [encode_result(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode_result(v) for k, v in value.items()}
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def decode_result(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"__model__", "pk"}:
        return apps.get_model(value["__model__"])._default_manager.get(pk=value["pk"])
    if isinstance(value, list):
        return [decode_result(v) for v in value]
    if isinstance(value, dict):
        return {k: decode_result(v) for k, v in value.items()}
    return value


def _stored_result(key: str, name: str, digest: str) -> tuple[bool, Any]:
    from integrity.models import OperationRecord

    record = OperationRecord.objects.filter(key=key).first()
    if record is None:
        return False, None
    if record.name != name or record.payload_hash != digest:
        raise OperationKeyReused(
            f"Idempotency key {key!r} was already used by another operation or payload."
        )
    return True, decode_result(record.result)


def _run_compensations(ctx: OperationContext) -> None:
    for compensate in reversed(ctx.compensations):
        try:
            compensate()
        except Exception:  # one failed undo must not stop the others
            logger.exception("Compensation of %s failed", ctx.name)
    ctx.compensations.clear()


def _attempt(ctx: OperationContext, steps: Sequence[Step], digest: str, isolation: str | None):
    from integrity.models import OperationRecord

    ctx.results = {}
    with transaction.atomic(durable=True):
        if isolation:
            set_isolation(isolation)
        try:
            # First statement: claims the key. A concurrent run with the same key waits on the
            # unique index (PostgreSQL) or the write lock (SQLite) until the first one ends,
            # then fails here if it committed. No savepoint: a clash ends the attempt anyway.
            record = OperationRecord.objects.create(
                key=ctx.idempotency_key, name=ctx.name, payload_hash=digest, attempts=ctx.attempt
            )
        except IntegrityError:
            raise _AlreadyDone() from None
        result = None
        for step in steps:
            with transaction.atomic():  # a savepoint per step
                result = step(ctx)
            ctx.results[getattr(step, "__name__", repr(step))] = result
        record.result = encode_result(result)
        record.save(update_fields=["result"])
    return result


def set_isolation(level: str) -> None:
    """First statement of a transaction; PostgreSQL only (SQLite transactions serialise)."""
    if level not in ISOLATION_LEVELS:
        raise ValueError(f"isolation must be one of {sorted(ISOLATION_LEVELS)}")
    if connection.features.supports_isolation_levels:
        with connection.cursor() as cursor:
            cursor.execute(f"SET TRANSACTION ISOLATION LEVEL {level}")  # from the allowlist


ISOLATION_LEVELS = {"SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED"}


class _AlreadyDone(Exception):
    pass


def _committed_anyway(ctx: OperationContext, digest: str) -> tuple[bool, Any]:
    """After a lost connection: did the COMMIT go through before the answer was lost?"""
    connection.close()
    try:
        return _stored_result(ctx.idempotency_key, ctx.name, digest)
    except DatabaseError:
        return False, None  # still unreachable: treat as not committed (it is retried)


# Exceptions with a meaning of their own for the caller (the API maps them to 4xx): not
# faults of the operation, so they are neither retried nor dead-lettered.
PASS_THROUGH: tuple[type[BaseException], ...] = (
    ObjectDoesNotExist,
    Http404,
    PermissionDenied,
    ValidationError,
)


def run_operation(
    name: str,
    steps: Sequence[Step] | None = None,
    payload: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    *,
    max_attempts: int | None = None,
    isolation: str | None = None,
    dead_letter: bool = True,
) -> Any:
    """Run `steps` as one all-or-nothing, retried operation; return the last step's result.

    Must be called outside any transaction (it owns it). `payload` must be JSON: it is what a
    dead letter keeps to run the operation again. `isolation` ("SERIALIZABLE",
    "REPEATABLE READ", "READ COMMITTED") applies on PostgreSQL.
    """
    blocks = connection.atomic_blocks
    if blocks and not getattr(blocks[-1], "_from_testcase", False):
        # Retrying needs the whole transaction: inside someone else's it cannot roll back.
        raise RuntimeError(f"run_operation({name!r}) must not run inside another transaction")
    steps = list(steps) if steps is not None else operation_steps(name)
    if isolation is not None and isolation not in ISOLATION_LEVELS:
        raise ValueError(f"isolation must be one of {sorted(ISOLATION_LEVELS)}")
    payload = payload or {}
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the payload of {name} must be plain JSON: {exc}") from exc
    key = idempotency_key or f"op-{uuid.uuid4().hex}"
    digest = payload_hash(name, payload)
    max_attempts = max_attempts or settings.OPERATION_MAX_ATTEMPTS
    ctx = OperationContext(name=name, payload=payload, idempotency_key=key)
    last_exc: BaseException | None = None
    for attempt in range(1, max_attempts + 1):
        ctx.attempt = attempt
        try:
            if idempotency_key or attempt > 1:
                done, result = _stored_result(key, name, digest)
                if done:
                    return result
            return _attempt(ctx, steps, digest, isolation)
        except _AlreadyDone:
            _run_compensations(ctx)
            return _stored_result(key, name, digest)[1]
        except (DomainError, *PASS_THROUGH):
            _run_compensations(ctx)
            raise
        except Exception as exc:  # classified below: retried, refused or dead-lettered
            if _lost_connection(exc):
                done, result = _committed_anyway(ctx, digest)
                if done:  # the COMMIT went through; its answer was lost
                    ctx.compensations.clear()
                    return result
            _run_compensations(ctx)
            refusal = guard_refusal(exc)
            if refusal is not None:
                # A database guard caught what the rules let through: a bug to log, not a
                # fault that a retry could fix.
                _record_error(ctx, exc)
                raise refusal from exc
            if isinstance(exc, IntegrityError):
                raise  # a constraint refused the write (a race the API answers with 409)
            last_exc = exc
            if not is_transient(exc):
                break
            if attempt < max_attempts:
                delay = backoff(attempt)
                logger.warning(
                    "Operation %s attempt %d/%d hit a transient error (%s); retrying in %.2fs",
                    name,
                    attempt,
                    max_attempts,
                    exc,
                    delay,
                )
                time.sleep(delay)
    assert last_exc is not None
    return _give_up(ctx, last_exc, dead_letter=dead_letter)


def _give_up(ctx: OperationContext, exc: BaseException, *, dead_letter: bool):
    transient = is_transient(exc)
    if _lost_connection(exc):
        connection.close()
    trace = "".join(tb.format_exception(exc))
    _record_error(ctx, exc)
    letter = None
    if dead_letter:
        from integrity.services import deadletter_create

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
    from alerts.services import raise_alert

    raise_alert(
        source="operations",
        key=ctx.name,
        severity="error",
        title=f"Operation {ctx.name} failed and was kept as a dead letter"
        if letter
        else f"Operation {ctx.name} failed",
        details={
            "dead_letter": letter.pk if letter else None,
            "error": f"{type(exc).__name__}: {exc}"[:1000],
            "attempts": ctx.attempt,
            "transient": transient,
        },
    )
    cls = OperationUnavailable if transient else OperationFailed
    cause = "could not finish because of a temporary database problem" if transient else "failed"
    kept = "it is kept for retry" if letter else "it was logged for an operator"
    message = f"The operation {cause} and was rolled back; {kept}."
    raise cls(message, fields={"dead_letter": letter.pk if letter else None}) from exc


def _record_error(ctx: OperationContext, exc: BaseException) -> None:
    """Hand the error to the error log (a layer above: it listens to config.signals)."""
    if not signals.operation_failed.send_robust(
        sender=None, exc=exc, name=ctx.name, payload=ctx.payload
    ):  # the error log is not installed in this process
        logger.error("Operation %s failed: %s", ctx.name, exc)
