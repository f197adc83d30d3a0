"""Check runs: run the registered checks (config/registry.py), store each one's result and
findings, raise or resolve its alert, and keep the history tidy (stale runs, retention)."""

import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_q import tasks as q_tasks

from alerts import services as alerting
from audit.services import audit_record
from config import registry
from config.db.features import project_features
from integrity.exceptions import CheckRunError
from integrity.models import CheckResult, CheckRun, CheckStatus, Finding
from integrity.selectors import explanations_in_force

checks_logger = logging.getLogger("ledgerguard.checks")
RUN_ORDER = {"pass": 0, "warn": 1, "fail": 2, "error": 3}


def check_outcome(failing: int, warn_at: int | None, error_at: int | None) -> str:
    """A check's status from its failing count and its thresholds."""
    if error_at is not None and failing >= error_at:
        return CheckStatus.FAIL
    if warn_at is not None and failing >= warn_at:
        return CheckStatus.WARN
    return CheckStatus.PASS


def checkrun_create(
    *,
    trigger: str,
    actor: User | None = None,
    tags: list[str] | None = None,
    checks: list[str] | None = None,
    since: datetime | None = None,
    schedule: str = "",
) -> CheckRun:
    """Record a queued run after validating its selection (CheckRunError names what is wrong)."""
    tags, checks = list(tags or []), list(checks or [])
    try:
        registry.select(tags=tags, names=checks)
    except registry.UnknownSelection as exc:
        raise CheckRunError(exc.message, fields={exc.field: [exc.message]}) from None
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
    actor: User | None = None,
    tags: list[str] | None = None,
    checks: list[str] | None = None,
    since: datetime | None = None,
    schedule: str = "",
) -> CheckRun:
    """Run the selected checks now and store the run; see `checkrun_execute`."""
    run = checkrun_create(
        trigger=trigger, actor=actor, tags=tags, checks=checks, since=since, schedule=schedule
    )
    return checkrun_execute(run_id=run.pk)


def checkrun_queue(
    *,
    actor: User | None,
    trigger: str,
    tags: list[str] | None = None,
    checks: list[str] | None = None,
) -> CheckRun:
    """Record a run and have the worker execute it (when it commits)."""
    run = checkrun_create(trigger=trigger, actor=actor, tags=tags, checks=checks)
    transaction.on_commit(
        lambda: q_tasks.async_task(
            "integrity.tasks.execute_check_run", run.pk, task_name=f"check-run-{run.pk}"
        )
    )
    return run


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
    if not claimed or run.started_at is None:
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
    """A read-only REPEATABLE READ transaction on PostgreSQL (without JIT), so a check that
    reads with more than one statement sees one state even while postings commit; elsewhere a
    savepoint (a failing check must not break an outer transaction), or nothing on SQLite in
    autocommit, where every check statement is its own snapshot and a transaction would take
    the write lock (IMMEDIATE) and stall postings."""
    # The project's backends (config/db/) give their features the ProjectFeatures flags.
    if connection.in_atomic_block:
        with transaction.atomic():
            yield
    elif project_features(connection).supports_isolation_levels:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            # A check's statement reads up to millions of rows once, so its estimated cost
            # passes jit_above_cost, yet compiling it (0.1 to 0.25 s a statement, measured at
            # 10^6 lines) costs more than it saves: no JIT, for this transaction only.
            cursor.execute("SET LOCAL jit = off")
            yield
    else:
        yield


def _find(check: registry.Check, ctx: registry.CheckContext) -> tuple[list[registry.Finding], str]:
    """The check's findings, or the error it raised: a broken check is an outcome (error),
    not the end of the run."""
    try:
        with _snapshot():
            return list(
                # One context for the run (its `shared` results), without the window for the
                # checks that always read everything.
                check.func(ctx if check.windowed else dataclasses.replace(ctx, since=None))
            ), ""
    except Exception as exc:
        checks_logger.exception("Check %s raised", check.name)
        return [], f"{type(exc).__name__}: {exc}"[:5000]


def _run_one(run: CheckRun, check: registry.Check, ctx: registry.CheckContext) -> CheckResult:
    started = timezone.now()
    t0 = time.perf_counter()
    findings, error = _find(check, ctx)
    duration = int((time.perf_counter() - t0) * 1000)
    warn_at, error_at = check.thresholds
    prints = [f.fingerprint(check.name) for f in findings]
    with transaction.atomic():
        known = explanations_in_force(check_name=check.name, fingerprints=prints)
        failing = sum(f.count for f, p in zip(findings, prints, strict=True) if p not in known)
        explained = sum(f.count for f in findings) - failing
        status = CheckStatus.ERROR if error else check_outcome(failing, warn_at, error_at)
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
                finding_row(
                    check,
                    f,
                    fingerprint=p,
                    sample_size=ctx.sample_size,
                    run=run,
                    result=result,
                    explanation_id=known.get(p),
                )
                for f, p in zip(findings, prints, strict=True)
            ]
        )
    return result


def finding_row(
    check: registry.Check,
    found: registry.Finding,
    *,
    fingerprint: str,
    sample_size: int,
    run: CheckRun | None = None,
    result: CheckResult | None = None,
    explanation_id: int | None = None,
) -> Finding:
    """The stored row of what a check found (unsaved), cut to its columns' sizes."""
    return Finding(
        run=run,
        result=result,
        check_name=check.name,
        severity=found.severity or check.severity,
        message=found.message[:5000],
        count=found.count,
        object_type=found.object_type[:100],
        object_id=str(found.object_id)[:64],
        key=found.key[:200],
        details=_jsonable(found.details),
        sample=_jsonable(found.sample[:sample_size]),
        fingerprint=fingerprint,
        explanation_id=explanation_id,
    )


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


def checkruns_purge() -> int:
    """Runs (with results and findings) past CHECK_RUN_RETENTION_DAYS go; explanations stay."""
    cutoff = timezone.now() - timedelta(days=settings.CHECK_RUN_RETENTION_DAYS)
    deleted, _ = CheckRun.objects.filter(created_at__lt=cutoff).delete()
    return deleted
