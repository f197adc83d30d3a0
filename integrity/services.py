"""Integrity services: the dead-letter queue (create, retry, discard, watch the queue) and
checks (run the registered checks, store runs and findings, alert, explain findings)."""

import json
import logging
import time
import traceback as tb
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from alerts import services as alerting
from audit.services import audit_record
from config import registry
from config.exceptions import DomainError
from integrity.models import (
    CheckResult,
    CheckRun,
    CheckStatus,
    DeadLetter,
    DeadLetterEvent,
    Finding,
    FindingExplanation,
    OperationRecord,
)
from integrity.operations import UnknownOperation, operation_get
from integrity.runner import operation_run

logger = logging.getLogger("ledgerguard.deadletters")
S = DeadLetter.Status
# A retry that has been "retrying" this long belongs to a process that died: release it.
STALE_RETRY = timedelta(minutes=15)


class DeadLetterError(DomainError):
    code = "deadletter.invalid_state"


def _event(letter: DeadLetter, action: str, actor=None, note: str = "") -> None:
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
    *, dead_letter: DeadLetter, actor=None, manual: bool = True, note: str = ""
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


RETRYABLE_CODES = ("operation.failed", "operation.unavailable")


def _retry_failed(
    letter: DeadLetter, exc: BaseException, actor, *, manual: bool = True
) -> DeadLetter:
    attempts = letter.attempts + 1
    # A broken business rule or an unknown operation will not fix itself by waiting.
    permanent = isinstance(exc, UnknownOperation) or (
        isinstance(exc, DomainError) and exc.code not in RETRYABLE_CODES
    )
    exhausted = attempts >= letter.max_attempts or permanent
    now = timezone.now()
    if isinstance(exc, DomainError) and exc.code in RETRYABLE_CODES and exc.__cause__:
        exc = exc.__cause__  # keep the root cause, not the wrapper
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
    letter: DeadLetter, *, actor, attempts: int, exhausted: bool, error: str, **extra: Any
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
    *, dead_letter: DeadLetter, actor, reason: str, note: str = ""
) -> DeadLetter:
    if not reason.strip():
        raise DomainError(
            "Say why the dead letter is discarded.",
            code="deadletter.reason_required",
            fields={"reason": ["Required."]},
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
    # A claim left behind by a retry that died (or hung) counts as a failed attempt, so a
    # letter that kills its retrier ends failed instead of being retried forever.
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


def operation_records_purge() -> int:
    """Old results go, except those an open dead letter may still need to stay exactly-once."""
    cutoff = timezone.now() - timedelta(days=settings.OPERATION_RECORD_RETENTION_DAYS)
    needed = DeadLetter.objects.exclude(status__in=(S.RESOLVED, S.DISCARDED)).values(
        "idempotency_key"
    )
    deleted, _ = (
        OperationRecord.objects.filter(completed_at__lt=cutoff).exclude(key__in=needed).delete()
    )
    return deleted


def task_failure_dead_letter(task: dict[str, Any]) -> DeadLetter | None:
    """django-q2 post_execute: a failed task on its last attempt becomes a dead letter."""
    if task.get("success"):
        return None
    from django_q.conf import Conf
    from django_q.models import Task

    attempts = (
        Task.objects.filter(id=task.get("id")).values_list("attempt_count", flat=True).first() or 1
    )
    if Conf.MAX_ATTEMPTS > 0 and attempts < Conf.MAX_ATTEMPTS:
        return None  # the broker will present it again
    func = task.get("func")
    path = func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"
    letter = deadletter_create(
        kind=DeadLetter.Kind.TASK,
        operation=path,
        payload={
            "args": list(task.get("args") or ()),
            "kwargs": dict(task.get("kwargs") or {}),
            "task_id": task.get("id"),
            "task_name": task.get("name"),
        },
        error=str(task.get("result"))[:10000],
    )
    alerting.raise_alert(
        source="tasks",
        key=path,
        severity="error",
        title=f"Task {path} failed {attempts} times and was kept as a dead letter",
        details={"dead_letter": letter.pk, "task": task.get("name")},
    )
    return letter


# Checks ------------------------------------------------------------------------------------

checks_logger = logging.getLogger("ledgerguard.checks")
RUN_ORDER = {"pass": 0, "warn": 1, "fail": 2, "error": 3}


class CheckRunError(DomainError):
    code = "checks.invalid"
    http_status = 400


def _outcome(failing: int, warn_at: int | None, error_at: int | None) -> str:
    if error_at is not None and failing >= error_at:
        return CheckStatus.FAIL
    if warn_at is not None and failing >= warn_at:
        return CheckStatus.WARN
    return CheckStatus.PASS


def checkrun_create(
    *,
    trigger: str,
    actor=None,
    tags: list[str] | None = None,
    checks: list[str] | None = None,
    since=None,
    schedule: str = "",
) -> CheckRun:
    """Record a queued run after validating its selection (CheckRunError names what is wrong)."""
    tags, checks = list(tags or []), list(checks or [])
    try:
        registry.select(tags=tags, names=checks)
    except KeyError as exc:
        field, message = exc.args
        raise CheckRunError(message, fields={field: [message]}) from None
    with transaction.atomic():
        run = CheckRun.objects.create(
            trigger=trigger,
            triggered_by=actor,
            tags=tags,
            checks=checks,
            since=since,
            schedule=schedule,
        )
        audit_record(
            action="checks.requested",
            obj=run,
            actor=actor,
            metadata={
                "trigger": trigger,
                "tags": tags,
                "checks": checks,
                "since": since,
                "schedule": schedule,
            },
        )
    return run


def checks_run(
    *,
    trigger: str,
    actor=None,
    tags: list[str] | None = None,
    checks: list[str] | None = None,
    since=None,
    schedule: str = "",
) -> CheckRun:
    """Run the selected checks now and store the run; see `checkrun_execute`."""
    run = checkrun_create(
        trigger=trigger, actor=actor, tags=tags, checks=checks, since=since, schedule=schedule
    )
    return checkrun_execute(run_id=run.pk)


def checkrun_execute(*, run_id: int) -> CheckRun:
    """Run a queued run's checks one by one, each in its own read snapshot.

    Each check's result and findings are committed as soon as it ends, so a run killed midway
    keeps what it finished (and is marked abandoned later). A check that raises is recorded
    with status error and the others still run. Alerts: a failing or warning check raises
    (`checks/<name>`), a passing one resolves, except a windowed check in a windowed (hourly)
    run: it saw only recent rows and must not clear what a full run found.
    """
    claimed = CheckRun.objects.filter(pk=run_id, status=CheckRun.Status.QUEUED).update(
        status=CheckRun.Status.RUNNING, started_at=timezone.now()
    )
    run = CheckRun.objects.get(pk=run_id)
    if not claimed:
        raise CheckRunError(f"check run #{run_id} is {run.status}, not queued")
    ctx = registry.CheckContext(since=run.since, sample_size=settings.CHECK_SAMPLE_SIZE)
    outcomes: dict[str, int] = {}
    for check in registry.select(tags=run.tags, names=run.checks):
        result = _run_one(run, check, ctx)
        outcomes[str(result.status)] = outcomes.get(str(result.status), 0) + 1
        _alert(run, check, result)
    worst = max(outcomes, key=RUN_ORDER.__getitem__, default=CheckStatus.PASS)
    finished = timezone.now()
    duration_ms = int((finished - run.started_at).total_seconds() * 1000)
    with transaction.atomic():
        # Conditional: a run marked abandoned meanwhile (it took too long) stays abandoned.
        if not CheckRun.objects.filter(pk=run.pk, status=CheckRun.Status.RUNNING).update(
            status=worst, finished_at=finished, duration_ms=duration_ms, summary=outcomes
        ):
            run.refresh_from_db()
            return run
        run.refresh_from_db()
        audit_record(
            action="checks.completed",
            obj=run,
            actor=run.triggered_by,
            changes={"status": [CheckRun.Status.RUNNING, worst]},
            metadata={"summary": outcomes, "trigger": run.trigger, "duration_ms": run.duration_ms},
        )
    return run


@contextmanager
def _snapshot() -> Iterator[None]:
    """A read-only REPEATABLE READ transaction on PostgreSQL, so a check that reads with more
    than one statement sees one state even while postings commit; elsewhere a savepoint (a
    failing check must not break an outer transaction), or nothing on SQLite in autocommit,
    where every check statement is its own snapshot and a transaction would take the write
    lock (IMMEDIATE) and stall postings."""
    if connection.in_atomic_block:
        with transaction.atomic():
            yield
    elif connection.features.supports_isolation_levels:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
    else:
        yield


def _run_one(run: CheckRun, check: registry.Check, ctx: registry.CheckContext) -> CheckResult:
    started = timezone.now()
    t0 = time.perf_counter()
    findings: list[registry.Finding] = []
    error = ""
    try:
        with _snapshot():
            findings = list(
                check.func(
                    ctx if check.windowed else registry.CheckContext(sample_size=ctx.sample_size)
                )
            )
    except Exception as exc:  # a broken check is an outcome (error), not the end of the run
        checks_logger.exception("Check %s raised", check.name)
        error = f"{type(exc).__name__}: {exc}"[:5000]
    duration = int((time.perf_counter() - t0) * 1000)
    warn_at, error_at = check.thresholds
    prints = [f.fingerprint(check.name) for f in findings]
    with transaction.atomic():
        known = explanations_in_force(check_name=check.name, fingerprints=prints)
        failing = sum(f.count for f, p in zip(findings, prints, strict=True) if p not in known)
        explained = sum(f.count for f in findings) - failing
        status = CheckStatus.ERROR if error else _outcome(failing, warn_at, error_at)
        result = CheckResult.objects.create(
            run=run,
            check_name=check.name,
            tag=check.tag,
            severity=check.severity,
            status=status,
            failing_count=failing,
            explained_count=explained,
            warn_at=warn_at,
            error_at=error_at,
            started_at=started,
            duration_ms=duration,
            error=error,
        )
        Finding.objects.bulk_create(
            [
                Finding(
                    run=run,
                    result=result,
                    check_name=check.name,
                    severity=f.severity or check.severity,
                    message=f.message[:5000],
                    count=f.count,
                    object_type=f.object_type[:100],
                    object_id=str(f.object_id)[:64],
                    key=f.key[:200],
                    details=_jsonable(f.details),
                    sample=_jsonable(f.sample[: ctx.sample_size]),
                    fingerprint=p,
                    explanation_id=known.get(p),
                )
                for f, p in zip(findings, prints, strict=True)
            ]
        )
    return result


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _alert(run: CheckRun, check: registry.Check, result: CheckResult) -> None:
    source, key = check.alert
    if result.status == CheckStatus.PASS:
        # A windowed check that passed over recent rows says nothing of older ones.
        if run.is_full or not check.windowed:
            alerting.resolve_alert(source=source, key=key)
        return
    first = result.findings.filter(explanation__isnull=True).order_by("id").first()
    if result.status == CheckStatus.ERROR:
        severity, title = "error", f"Check {check.name} could not run: {result.error[:200]}"
    else:
        failed = result.status == CheckStatus.FAIL
        severity = check.severity if failed else "warning"
        title = (
            f"Check {check.name} {'failed' if failed else 'warned'}: "
            f"{result.failing_count} offending"
        )
        if first is not None:
            title += f" ({first.message[:200]})"
    alerting.raise_alert(
        source=source,
        key=key,
        severity=severity,
        title=title,
        details={
            "check": check.name,
            "run": run.pk,
            "status": result.status,
            "failing_count": result.failing_count,
            "thresholds": {"warn": result.warn_at, "error": result.error_at},
            "first_finding": first.message if first else None,
            "sample": first.sample if first else [],
            "runbook": f"checks/{check.name}",
        },
    )


def checkruns_abandon_stale() -> int:
    """Runs left running by a process that died are marked abandoned (they stay listed)."""
    cutoff = timezone.now() - timedelta(minutes=settings.CHECK_RUN_STALE_MINUTES)
    stale = CheckRun.objects.filter(
        Q(status=CheckRun.Status.RUNNING, started_at__lt=cutoff)
        | Q(status=CheckRun.Status.QUEUED, created_at__lt=cutoff)
    )
    count = 0
    for run in stale.order_by("pk"):
        with transaction.atomic():
            if CheckRun.objects.filter(pk=run.pk, status=run.status).update(
                status=CheckRun.Status.ABANDONED, finished_at=timezone.now()
            ):
                count += 1
                changes = {"status": [run.status, CheckRun.Status.ABANDONED]}
                audit_record(action="checks.abandoned", obj=run, changes=changes)
    return count


class FindingError(DomainError):
    code = "finding.invalid"
    http_status = 400


@transaction.atomic
def finding_explain(*, finding: Finding, actor, reason: str) -> Finding:
    """Explain a finding: it and the same finding in later runs stop counting as failing.

    Refused for checks whose findings are never expected (a dead scheduler), without a reason,
    and while an explanation of the same finding is in force.
    """
    reason = (reason or "").strip()
    check = registry.all_checks().get(finding.check_name)
    if check is not None and not check.explainable:
        raise FindingError(
            f"Findings of {finding.check_name} cannot be explained: fix the cause.",
            code="finding.not_explainable",
        )
    if not reason:
        raise FindingError("A reason is required.", fields={"reason": ["This field is required."]})
    finding = Finding.objects.select_for_update().get(pk=finding.pk)
    if explanations_in_force(check_name=finding.check_name, fingerprints=[finding.fingerprint]):
        raise FindingError(
            "This finding is already explained.", fields={"reason": ["already explained"]}
        )
    explanation = FindingExplanation.objects.create(
        check_name=finding.check_name,
        fingerprint=finding.fingerprint,
        reason=reason[:5000],
        explained_by=actor,
        explained_at=timezone.now(),
    )
    finding.explanation = explanation
    finding.save(update_fields=["explanation"])
    audit_record(
        action="check_finding.explained",
        obj=finding,
        actor=actor,
        metadata={
            "check": finding.check_name,
            "fingerprint": finding.fingerprint,
            "reason": reason[:1000],
            "run": finding.run_id,
        },
    )
    return finding


@transaction.atomic
def finding_explanation_withdraw(*, finding: Finding, actor) -> Finding:
    """Withdraw the explanation in force for a finding: from the next run on it counts again.
    The explanation is kept, so earlier runs still show what was explained and why."""
    finding = Finding.objects.select_for_update().get(pk=finding.pk)
    explanation = (
        FindingExplanation.objects.select_for_update()
        .filter(
            check_name=finding.check_name,
            fingerprint=finding.fingerprint,
            withdrawn_at__isnull=True,
        )
        .first()
    )
    if explanation is None:
        raise FindingError("This finding has no explanation in force.")
    explanation.withdrawn_at = timezone.now()
    explanation.withdrawn_by = actor
    explanation.save(update_fields=["withdrawn_at", "withdrawn_by"])
    audit_record(
        action="check_finding.explanation_withdrawn",
        obj=finding,
        actor=actor,
        metadata={
            "check": finding.check_name,
            "fingerprint": finding.fingerprint,
            "reason": explanation.reason[:1000],
        },
    )
    return finding


def explanations_in_force(*, check_name: str, fingerprints: list[str]) -> dict[str, int]:
    """{fingerprint: explanation id} for those of `fingerprints` explained and not withdrawn:
    what a run, a new explanation and the real-time re-check all judge by."""
    return dict(
        FindingExplanation.objects.filter(
            check_name=check_name, fingerprint__in=fingerprints, withdrawn_at__isnull=True
        ).values_list("fingerprint", "pk")
    )


def checkruns_purge() -> int:
    """Runs (with results and findings) past CHECK_RUN_RETENTION_DAYS go; explanations stay."""
    cutoff = timezone.now() - timedelta(days=settings.CHECK_RUN_RETENTION_DAYS)
    deleted, _ = CheckRun.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def checkrun_queue(
    *, actor, trigger: str, tags: list[str] | None = None, checks: list[str] | None = None
) -> CheckRun:
    """Record a run and have the worker execute it (when it commits)."""
    from django_q.tasks import async_task

    run = checkrun_create(trigger=trigger, actor=actor, tags=tags, checks=checks)
    transaction.on_commit(
        lambda: async_task(
            "integrity.tasks.execute_check_run", run.pk, task_name=f"check-run-{run.pk}"
        )
    )
    return run
