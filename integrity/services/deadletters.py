"""The dead-letter queue: keep what could not finish, retry it with its original key, discard
it with a reason, and watch the queue.

A letter moves pending -> retrying -> resolved, or back to pending (another attempt later), or
to failed (attempts exhausted, or an error waiting will not fix); an operator may retry a failed
one or discard it. Every move is a DeadLetterEvent and an audit event.
"""

import traceback as tb
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from alerts import services as alerting
from audit.services import audit_record
from config.errors import DomainError
from integrity.exceptions import (
    DeadLetterError,
    DeadLetterReasonRequired,
    OperationFailed,
    UnknownOperation,
)
from integrity.models import DeadLetter, DeadLetterEvent
from integrity.operations import operation_get
from integrity.runner import operation_run

S = DeadLetter.Status
# A retry that has been "retrying" this long belongs to a process that died: release it.
STALE_RETRY = timedelta(minutes=15)


def _event(letter: DeadLetter, action: str, actor: User | None = None, note: str = "") -> None:
    DeadLetterEvent.objects.create(dead_letter=letter, action=action, actor=actor, note=note[:5000])


def _retry_delay(attempts: int) -> timedelta:
    base = settings.DEADLETTER_RETRY_BASE_SECONDS
    return timedelta(seconds=min(settings.DEADLETTER_RETRY_MAX_SECONDS, base * 2**attempts))


@transaction.atomic
def deadletter_create(
    *,
    operation: str,
    payload: dict[str, Any],
    idempotency_key: str = "",
    error: str = "",
    traceback: str = "",
    kind: str = DeadLetter.Kind.OPERATION,
) -> DeadLetter:
    letter = DeadLetter.objects.create(
        kind=kind,
        operation=operation,
        payload=payload,
        idempotency_key=idempotency_key,
        error=error[:10000],
        traceback=traceback[:50000],
        max_attempts=settings.DEADLETTER_MAX_ATTEMPTS,
        next_retry_at=timezone.now() + _retry_delay(0),
    )
    _event(letter, "created", note=error[:1000])
    # The payload stays on the letter: it may carry what the trail should not keep.
    audit_record(
        action="dead_letter.created",
        obj=letter,
        metadata={"operation": operation, "kind": kind, "error": error[:1000]},
    )
    return letter


def _claim(letter_id: int, *, allowed: tuple[str, ...]) -> DeadLetter:
    """Conditional update: exactly one caller moves the letter to retrying."""
    now = timezone.now()
    claimed = DeadLetter.objects.filter(pk=letter_id, status__in=allowed).update(
        status=S.RETRYING, last_attempt_at=now, updated_at=now
    )
    letter = DeadLetter.objects.get(pk=letter_id)
    if claimed != 1:
        raise DeadLetterError(
            f"Dead letter #{letter_id} is {letter.status}; only pending or failed ones retry."
        )
    return letter


def _run(letter: DeadLetter) -> None:
    if letter.kind == DeadLetter.Kind.TASK:
        module, _, func = letter.operation.rpartition(".")
        target = getattr(import_module(module), func)
        target(*letter.payload.get("args", []), **letter.payload.get("kwargs", {}))
        return
    # Not kept again when it fails: the letter itself records the failure.
    operation_run(
        operation_get(letter.operation),
        letter.payload,
        letter.idempotency_key or None,
    )


def deadletter_retry(
    *, dead_letter: DeadLetter, actor: User | None = None, manual: bool = True, note: str = ""
) -> DeadLetter:
    """Run the operation again with its original key (so it can never run twice).

    Manual retries (operators) also re-arm failed letters; scheduled ones take pending only.
    """
    allowed = (S.PENDING, S.FAILED) if manual else (S.PENDING,)
    letter = _claim(dead_letter.pk, allowed=allowed)
    _event(letter, "retry", actor, note or ("manual" if manual else "scheduled"))
    try:
        _run(letter)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the letter
        return _retry_failed(letter, exc, actor, manual=manual)
    now = timezone.now()
    with transaction.atomic():
        DeadLetter.objects.filter(pk=letter.pk).update(
            status=S.RESOLVED,
            resolved_at=now,
            resolved_by=actor,
            next_retry_at=None,
            attempts=letter.attempts + 1,
            updated_at=now,
        )
        _event(letter, "resolved", actor, "retry succeeded")
        audit_record(
            action="dead_letter.retried",
            obj=letter,
            actor=actor,
            changes={"status": [S.RETRYING, S.RESOLVED]},
            metadata={
                "operation": letter.operation,
                "attempts": letter.attempts + 1,
                "manual": manual,
                "note": note,
            },
        )
        transaction.on_commit(lambda: _resolve_alerts(letter))
    return DeadLetter.objects.get(pk=letter.pk)


def _resolve_alerts(letter: DeadLetter) -> None:
    """A letter is settled: clear its own alert, and its operation's once none is open."""
    alerting.resolve_alert(source="deadletters", key=f"failed:{letter.pk}")
    still_open = DeadLetter.objects.filter(
        operation=letter.operation, status__in=(S.PENDING, S.RETRYING, S.FAILED)
    ).exists()
    if not still_open:
        source = "tasks" if letter.kind == DeadLetter.Kind.TASK else "operations"
        alerting.resolve_alert(source=source, key=letter.operation)


def _retry_failed(
    letter: DeadLetter, exc: BaseException, actor: User | None, *, manual: bool = True
) -> DeadLetter:
    attempts = letter.attempts + 1
    # A broken business rule or an unknown operation will not fix itself by waiting; a domain
    # error that passes by itself (DomainError.passes: the transaction manager's failures, a
    # busy row) may.
    permanent = isinstance(exc, UnknownOperation) or (
        isinstance(exc, DomainError) and not exc.passes
    )
    exhausted = attempts >= letter.max_attempts or permanent
    now = timezone.now()
    if isinstance(exc, OperationFailed) and exc.__cause__:
        exc = exc.__cause__  # keep the root cause, not the transaction manager's wrapper
    error = f"{type(exc).__name__}: {exc}"
    with transaction.atomic():
        DeadLetter.objects.filter(pk=letter.pk).update(
            status=S.FAILED if exhausted else S.PENDING,
            attempts=attempts,
            error=error[:10000],
            traceback="".join(tb.format_exception(exc))[:50000],
            next_retry_at=None if exhausted else now + _retry_delay(attempts),
            updated_at=now,
        )
        _event(letter, "failed" if exhausted else "retry_failed", actor, error[:1000])
        # Here, not in the retry's transaction: that one was rolled back with the failure.
        _audit_retry_failed(
            letter,
            actor=actor,
            attempts=attempts,
            exhausted=exhausted,
            error=error,
            manual=manual,
            permanent=permanent,
        )
    if exhausted:
        transaction.on_commit(lambda: _alert_failed(letter, attempts, error, permanent=permanent))
    return DeadLetter.objects.get(pk=letter.pk)


def _audit_retry_failed(
    letter: DeadLetter,
    *,
    actor: User | None,
    attempts: int,
    exhausted: bool,
    error: str,
    **extra: Any,
) -> None:
    audit_record(
        action="dead_letter.retry_failed",
        obj=letter,
        actor=actor,
        changes={"status": [S.RETRYING, S.FAILED if exhausted else S.PENDING]},
        metadata={
            "operation": letter.operation,
            "attempts": attempts,
            "exhausted": exhausted,
            "error": error[:1000],
            **extra,
        },
    )


def _alert_failed(letter: DeadLetter, attempts: int, error: str, *, permanent: bool) -> None:
    alerting.raise_alert(
        source="deadletters",
        key=f"failed:{letter.pk}",
        severity="error",
        title=f"Dead letter #{letter.pk} ({letter.operation}) failed for good",
        details={"attempts": attempts, "error": error[:1000], "permanent": permanent},
    )


@transaction.atomic
def deadletter_discard(
    *, dead_letter: DeadLetter, actor: User | None, reason: str, note: str = ""
) -> DeadLetter:
    if not reason.strip():
        raise DeadLetterReasonRequired(
            "Say why the dead letter is discarded.", fields={"reason": ["Required."]}
        )
    letter = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
    if letter.status in (S.RESOLVED, S.DISCARDED, S.RETRYING):
        raise DeadLetterError(
            f"Dead letter #{letter.pk} is {letter.status}; it cannot be discarded."
        )
    audit_record(
        action="dead_letter.discarded",
        obj=letter,
        actor=actor,
        changes={"status": [letter.status, S.DISCARDED]},
        metadata={"operation": letter.operation, "reason": reason, "note": note},
    )
    letter.status = S.DISCARDED
    letter.discarded_at = timezone.now()
    letter.discarded_by = actor
    letter.discard_reason = reason
    letter.next_retry_at = None
    letter.save(
        update_fields=[
            "status",
            "discarded_at",
            "discarded_by",
            "discard_reason",
            "next_retry_at",
            "updated_at",
        ]
    )
    _event(letter, "discarded", actor, f"{reason} ({note})" if note else reason)
    transaction.on_commit(lambda: _resolve_alerts(letter))
    return letter


def deadletter_retry_due(*, limit: int = 50) -> dict[str, int]:
    """The scheduled retrier: release stale claims, then retry due pending letters."""
    now = timezone.now()
    released = _release_stale(now)
    due = list(
        DeadLetter.objects.filter(status=S.PENDING, next_retry_at__lte=now)
        .order_by("next_retry_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    outcome = {"released": released, "resolved": 0, "pending": 0, "failed": 0, "skipped": 0}
    for pk in due:
        try:
            letter = deadletter_retry(dead_letter=DeadLetter(pk=pk), actor=None, manual=False)
        except DeadLetterError:
            outcome["skipped"] += 1  # another worker claimed it first
            continue
        outcome[letter.status if letter.status in outcome else "pending"] += 1
    return outcome


def _release_stale(now: datetime) -> int:
    """A claim left behind by a retry that died (or hung) counts as a failed attempt, so a
    letter that kills its retrier ends failed instead of being retried forever."""
    stale = DeadLetter.objects.filter(status=S.RETRYING, last_attempt_at__lt=now - STALE_RETRY)
    released = 0
    for letter in stale.order_by("pk"):
        attempts = letter.attempts + 1
        exhausted = attempts >= letter.max_attempts
        error = "the retry never finished (its process died or hung)"
        with transaction.atomic():
            claimed = DeadLetter.objects.filter(pk=letter.pk, status=S.RETRYING).update(
                status=S.FAILED if exhausted else S.PENDING,
                attempts=attempts,
                next_retry_at=None if exhausted else now + _retry_delay(attempts),
                updated_at=now,
            )
            released += claimed
            _event(letter, "failed" if exhausted else "retry_failed", None, error)
            if claimed:
                _audit_retry_failed(
                    letter,
                    actor=None,
                    attempts=attempts,
                    exhausted=exhausted,
                    error=error,
                    manual=False,
                    stale=True,
                )
        if exhausted:
            _alert_failed(letter, attempts, "the retry never finished", permanent=False)
    return released


def deadletter_queue_check() -> dict[str, Any]:
    """Queue health: open letters and the age of the oldest; alert past the thresholds."""
    now = timezone.now()
    # Waiting letters only: a failed one has its own alert until an operator settles it.
    open_letters = DeadLetter.objects.filter(status__in=(S.PENDING, S.RETRYING))
    stats = open_letters.aggregate(oldest=Min("created_at"))
    count = open_letters.count()
    age = (now - stats["oldest"]).total_seconds() if stats["oldest"] else 0.0
    result = {
        "open": count,
        "oldest_age_seconds": round(age, 1),
        "failed": DeadLetter.objects.filter(status=S.FAILED).count(),
    }
    too_many = count >= settings.DEADLETTER_ALERT_COUNT
    too_old = age >= settings.DEADLETTER_ALERT_AGE_MINUTES * 60
    if too_many or too_old:
        alerting.raise_alert(
            source="deadletters",
            key="queue",
            severity="warning",
            title=f"Dead-letter queue: {count} open, oldest {age / 60:.0f} min old",
            details=result,
        )
    else:
        alerting.resolve_alert(source="deadletters", key="queue")
    return result
