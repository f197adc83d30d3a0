"""How an operation runs: one transaction per attempt, retried on transient faults, exactly once.

`operation_run` is the engine behind `integrity.transactions.run_operation` (read that module's
docstring first). It knows nothing of the dead-letter queue: when it gives up it hands the
failure to the `keep` function its caller gave it (the transaction manager's writes a dead
letter), so the queue's own retry path runs operations through here without a cycle.
"""

import hashlib
import json
import logging
import random
import time
import traceback as tb
import uuid
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Model
from django.http import Http404

from alerts import services as alerting
from config import signals
from config.db.commit import only_test_blocks_open
from config.db.errors import lost_connection, transient_error
from config.db.features import project_features
from config.errors import DomainError, guard_refusal
from integrity.exceptions import OperationFailed, OperationKeyReused, OperationUnavailable
from integrity.models import OperationRecord
from integrity.operations import Operation, OperationContext

logger = logging.getLogger("ledgerguard.operations")

ISOLATION_LEVELS = {"SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED"}

# Exceptions with a meaning of their own for the caller (the API maps them to 4xx): not
# faults of the operation, so they are neither retried nor dead-lettered.
PASS_THROUGH: tuple[type[BaseException], ...] = (
    ObjectDoesNotExist,
    Http404,
    PermissionDenied,
    ValidationError,
)

_NOT_FAULTS: tuple[type[BaseException], ...] = (DomainError, *PASS_THROUGH)

# Keeps a failed operation for a later retry: (context, error, traceback) -> dead letter id, or
# None when it could not be kept.
Keeper = Callable[[OperationContext, BaseException, str], int | None]


class _AlreadyDone(Exception):
    """The key was claimed by a run that committed: return its result."""


def is_transient(exc: BaseException) -> bool:
    """Worth another attempt: a transient database error (config/db/errors.py), never a broken
    business rule."""
    return not isinstance(exc, DomainError) and transient_error(exc)


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


def set_isolation(level: str) -> None:
    """First statement of a transaction; PostgreSQL only (SQLite transactions serialise)."""
    if level not in ISOLATION_LEVELS:
        raise ValueError(f"isolation must be one of {sorted(ISOLATION_LEVELS)}")
    if project_features(connection).supports_isolation_levels:
        with connection.cursor() as cursor:
            cursor.execute(f"SET TRANSACTION ISOLATION LEVEL {level}")  # from the allowlist


def _stored_result(key: str, name: str, digest: str) -> tuple[bool, Any]:
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


def _attempt(
    ctx: OperationContext, operation: Operation, digest: str, isolation: str | None
) -> Any:
    ctx.previous = None
    with transaction.atomic(durable=True):
        if isolation:
            set_isolation(isolation)
        record = None if operation.claim_last else _claim(ctx, digest)
        if len(operation.steps) == 1:  # the transaction is its savepoint
            ctx.previous = operation.steps[0](ctx)
        else:
            for step in operation.steps:
                with transaction.atomic():  # a savepoint per step
                    ctx.previous = step(ctx)
        if record is None:
            _claim(ctx, digest, result=encode_result(ctx.previous))
        else:
            record.result = encode_result(ctx.previous)
            record.save(update_fields=["result"])
    return ctx.previous


def _claim(ctx: OperationContext, digest: str, result: Any = None) -> OperationRecord:
    """Claim the key: a concurrent run with the same key waits on the unique index
    (PostgreSQL) or the write lock (SQLite) until the first one ends, then fails here if it
    committed. No savepoint: a clash ends the attempt anyway."""
    try:
        return OperationRecord.objects.create(
            key=ctx.idempotency_key,
            name=ctx.name,
            payload_hash=digest,
            attempts=ctx.attempt,
            result=result,
        )
    except IntegrityError:
        raise _AlreadyDone() from None


def _committed_anyway(ctx: OperationContext, digest: str) -> tuple[bool, Any]:
    """After a lost connection: did the COMMIT go through before the answer was lost?"""
    connection.close()
    try:
        return _stored_result(ctx.idempotency_key, ctx.name, digest)
    except DatabaseError:
        return False, None  # still unreachable: treat as not committed (it is retried)


def _checked_payload(
    operation: Operation, payload: dict[str, Any] | None, isolation: str | None
) -> dict[str, Any]:
    """Refuse a call that cannot work before anything runs; the payload, JSON-checked."""
    if connection.atomic_blocks and not only_test_blocks_open(connection):
        # Retrying needs the whole transaction: inside someone else's it cannot roll back.
        raise RuntimeError(
            f"run_operation({operation.name!r}) must not run inside another transaction"
        )
    if isolation is not None and isolation not in ISOLATION_LEVELS:
        raise ValueError(f"isolation must be one of {sorted(ISOLATION_LEVELS)}")
    payload = payload or {}
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the payload of {operation.name} must be plain JSON: {exc}") from exc
    return payload


def operation_run(
    operation: Operation,
    payload: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    *,
    max_attempts: int | None = None,
    isolation: str | None = None,
    keep: Keeper | None = None,
) -> Any:
    """Run `operation` all-or-nothing and return its last step's result.

    On giving up, `keep` (when given) keeps the operation for a later retry; without it the
    failure is only logged and alerted (a dead letter's own retry).
    """
    payload = _checked_payload(operation, payload, isolation)
    key = idempotency_key or f"op-{uuid.uuid4().hex}"
    digest = payload_hash(operation.name, payload)
    max_attempts = max_attempts or settings.OPERATION_MAX_ATTEMPTS
    ctx = OperationContext(name=operation.name, payload=payload, idempotency_key=key)
    last_exc: BaseException | None = None
    for attempt in range(1, max_attempts + 1):
        ctx.attempt = attempt
        try:
            if idempotency_key or attempt > 1:
                done, result = _stored_result(key, operation.name, digest)
                if done:
                    return result
            return _attempt(ctx, operation, digest, isolation)
        except _AlreadyDone:
            _run_compensations(ctx)
            return _stored_result(key, operation.name, digest)[1]
        except _NOT_FAULTS:
            _run_compensations(ctx)
            if operation.claim_last:
                # A run with the same key may have committed while this one waited on its
                # locks and then judged the state it left (claiming first, this run would
                # have waited on the key instead): its result is the answer.
                done, result = _stored_result(key, operation.name, digest)
                if done:
                    return result
            raise
        except Exception as exc:  # classified below: retried, refused or given up
            if lost_connection(exc):
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
                _pause(ctx, exc, max_attempts)
    assert last_exc is not None
    return _give_up(ctx, last_exc, keep=keep)


def _pause(ctx: OperationContext, exc: Exception, max_attempts: int) -> None:
    delay = backoff(ctx.attempt)
    logger.warning(
        "Operation %s attempt %d/%d hit a transient error (%s); retrying in %.2fs",
        ctx.name,
        ctx.attempt,
        max_attempts,
        exc,
        delay,
    )
    time.sleep(delay)


def _give_up(ctx: OperationContext, exc: BaseException, *, keep: Keeper | None) -> Any:
    transient = is_transient(exc)
    if lost_connection(exc):
        connection.close()
    trace = "".join(tb.format_exception(exc))
    _record_error(ctx, exc)
    letter = keep(ctx, exc, trace) if keep is not None else None
    alerting.raise_alert(
        source="operations",
        key=ctx.name,
        severity="error",
        title=f"Operation {ctx.name} failed and was kept as a dead letter"
        if letter
        else f"Operation {ctx.name} failed",
        details={
            "dead_letter": letter,
            "error": f"{type(exc).__name__}: {exc}"[:1000],
            "attempts": ctx.attempt,
            "transient": transient,
        },
    )
    cls = OperationUnavailable if transient else OperationFailed
    cause = "could not finish because of a temporary database problem" if transient else "failed"
    kept = "it is kept for retry" if letter else "it was logged for an operator"
    message = f"The operation {cause} and was rolled back; {kept}."
    raise cls(message, fields={"dead_letter": letter}) from exc


def _record_error(ctx: OperationContext, exc: BaseException) -> None:
    """Hand the error to the error log (a layer above: it listens to config.signals)."""
    if not signals.operation_failed.send_robust(
        sender=None, exc=exc, name=ctx.name, payload=ctx.payload
    ):  # the error log is not installed in this process
        logger.error("Operation %s failed: %s", ctx.name, exc)
