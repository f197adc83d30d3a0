"""Restore drills: restore a backup into a scratch database, prove the copy is the backup and is
sound, measure how long recovery took and how much could have been lost, and drop the copy.

An archive (SQLite, pg_dump) is restored into a scratch database; a pgBackRest set into a
temporary server of its own (backups/services/physical.py), as of its stop point or recovered
to a point in time. Both copies then go through the same steps: compare, checks, audit.

The checks and the audit verification run in a child `manage.py` process pointed at the
scratch database (DATABASE_URL), so they read the restored copy exactly as a recovered
server would, with the audit checkpoints that travelled with the backup."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backups import crypto, storage
from backups.engines import KEY_TABLES, engine_named
from backups.engines.base import DatabaseTarget, Snapshot
from backups.exceptions import BackupFailed, BackupNotRestorable
from backups.models import Backup, BackupStatus, RestoreDrill
from backups.services import physical
from backups.services.common import (
    DRILL_FAILED,
    VERIFICATION_FAILED,
    RestoredCopy,
    alert,
    checkpoints_prefix,
    move_status,
    one_line,
    record,
    resolve,
    workdir,
)
from backups.services.verify import RESTORABLE

# What a restored copy must pass: the financial checks and the structural integrity checks.
# Liveness checks (scheduler heartbeat, schedules, dead-letter queue, recent verification) say
# nothing about a copy and are left out.
DRILL_TAGS = ["finance"]
DRILL_CHECKS = [
    "integrity.migrations_applied",
    "integrity.model_constraints",
    "integrity.duplicate_keys",
    "integrity.audit_references",
    "integrity.json_references",
    "integrity.impossible_states",
    "finance.impossible_states",
    "alerts.impossible_states",
]
MANAGE = Path(settings.BASE_DIR) / "manage.py"


class DrillStepFailed(Exception):
    def __init__(self, step: str, message: str, results: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.step, self.message, self.results = step, message, results or {}


def newest_good_backup() -> Backup | None:
    return (
        Backup.objects.filter(status__in=(BackupStatus.COMPLETED, BackupStatus.VERIFIED))
        .order_by("-snapshot_at", "-id")
        .first()
    )


def check_drill(*, backup: Backup, target_time: datetime | None = None) -> None:
    """Raise BackupError when `backup` cannot be drilled (to `target_time`, when given): it has
    nothing stored, or the point in time is one its engine or its set cannot reach."""
    if backup.status not in RESTORABLE:
        raise BackupNotRestorable(f"Backup #{backup.pk} is {backup.status}: nothing to restore.")
    if target_time is None:
        return
    if target_time.tzinfo is None:
        raise BackupFailed("a point-in-time drill needs a target time with its timezone")
    if backup.engine != Backup.Engine.PGBACKREST:
        raise BackupFailed(
            f"backup #{backup.pk} is a {backup.engine} archive, which restores only as of its "
            "snapshot: point-in-time drills need a pgBackRest backup (BACKUP_ENGINE=pgbackrest)"
        )
    if backup.snapshot_at is not None and target_time < backup.snapshot_at:
        raise BackupFailed(
            f"{target_time.isoformat()} is before backup #{backup.pk} is consistent "
            f"({backup.snapshot_at.isoformat()}): drill an older backup to reach it"
        )
    if target_time > timezone.now():
        raise BackupFailed(f"{target_time.isoformat()} is in the future")


def drill_start(
    *,
    backup: Backup,
    actor: Any = None,
    trigger: str = Backup.Trigger.COMMAND,
    target_time: datetime | None = None,
) -> RestoreDrill:
    """The row of a drill about to run (RUNNING). With `target_time` (pgBackRest backups
    only), the drill recovers the set to that moment instead of its stop point."""
    check_drill(backup=backup, target_time=target_time)
    with transaction.atomic():
        # Under the row's lock, which retention takes too: a backup being pruned is not drilled,
        # and a backup with a drill running is not pruned.
        locked = Backup.objects.select_for_update().get(pk=backup.pk)
        if locked.status not in RESTORABLE:
            raise BackupNotRestorable(
                f"Backup #{backup.pk} is {locked.status}: nothing to restore."
            )
        drill = RestoreDrill.objects.create(
            backup=backup,
            trigger=trigger,
            started_at=timezone.now(),
            created_by=actor,
            target_time=target_time,
        )
        metadata: dict[str, Any] = {"drill": drill.pk, "trigger": trigger}
        if target_time is not None:
            metadata["target_time"] = target_time.isoformat()
        record("backup.drill_started", backup, actor, **metadata)
    return drill


def drill_run(*, drill: RestoreDrill, actor: Any = None) -> RestoreDrill:
    """Run the drill a RUNNING row stands for. Raises BackupError when it fails (the drill says
    which step, the backup is marked unverified, an alert is raised)."""
    backup = drill.backup
    results: dict[str, Any] = {}
    try:
        with workdir("drill") as work:
            checkpoints = _fetch_checkpoints(backup, work / "checkpoints")
            with _restored(backup, drill.target_time, work) as copy:
                drill.restore_seconds = copy.restore_seconds
                results["restored"] = _compare(
                    backup, copy.snapshot, point_in_time=drill.target_time is not None
                )
                results["restored"].update(copy.details)
                started = time.monotonic()
                results["checks"] = _run_checks(copy.target)
                results["audit"] = _verify_audit(copy.target, checkpoints)
                # How far the verification reaches: with no checkpoint travelled (a backup
                # taken before the first one), the chain is only checked against itself.
                results["audit"]["checkpoints_travelled"] = len(backup.checkpoints)
                drill.checks_seconds = time.monotonic() - started
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the drill
        _drill_failed(drill, exc, results, actor)
    newest = newest_good_backup()
    with transaction.atomic():
        drill.status = RestoreDrill.Status.PASSED
        drill.finished_at = timezone.now()
        drill.results = results
        if newest is not None and newest.snapshot_at is not None:
            drill.recovery_point_seconds = (drill.finished_at - newest.snapshot_at).total_seconds()
        drill.save()
        # A passed drill is the strongest proof there is: the backup is verified (this is
        # also what clears an earlier failed drill, which a checksum alone does not).
        move_status(
            backup,
            BackupStatus.VERIFIED,
            only_from=RESTORABLE,
            verified_at=drill.finished_at,
            verification_error="",
        )
        record(
            "backup.drill_passed",
            backup,
            actor,
            drill=drill.pk,
            restore_seconds=drill.restore_seconds,
            checks_seconds=drill.checks_seconds,
        )
    resolve(DRILL_FAILED)
    resolve(VERIFICATION_FAILED)
    return drill


def _restored(
    backup: Backup, target_time: datetime | None, work: Path
) -> AbstractContextManager[RestoredCopy]:
    if backup.engine == Backup.Engine.PGBACKREST:
        return physical.set_restored(backup, target_time)
    return _archive_restored(backup, work)


@contextmanager
def _archive_restored(backup: Backup, work: Path) -> Iterator[RestoredCopy]:
    """The stored object fetched, checked against its SHA-256, unpacked and restored into a
    scratch database (timed), which is dropped when the block ends."""
    engine = engine_named(backup.engine)
    fetched = work / "fetched.lgb"
    if storage.fetch(backup.location, fetched) != backup.sha256:
        raise DrillStepFailed("fetch", "the stored object's SHA-256 changed")
    archive = work / f"archive{engine.suffix}"
    crypto.unpack(fetched, archive, refuse_plain=crypto.encryption_key() is not None)
    fetched.unlink()
    with engine.scratch(drill_server(backup.engine)) as scratch:
        started = time.monotonic()
        engine.restore(archive, scratch)
        seconds = time.monotonic() - started
        yield RestoredCopy(
            target=scratch, restore_seconds=seconds, snapshot=engine.inspect(scratch, KEY_TABLES)
        )


def drill_server(engine: str) -> DatabaseTarget:
    """Where scratch databases are made: beside the running database (BACKUP_DRILL_DATABASE_URL
    names another server that may create databases)."""
    url = getattr(settings, "BACKUP_DRILL_DATABASE_URL", "")
    if url:
        return DatabaseTarget.from_url(url)
    from_default = settings.DATABASES["default"]
    vendor = "sqlite" if engine == Backup.Engine.SQLITE else "postgresql"
    return DatabaseTarget.from_settings(from_default, vendor)


def _fetch_checkpoints(backup: Backup, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in backup.checkpoints:
        storage.fetch(name, directory / name.removeprefix(checkpoints_prefix(backup)))
    return directory


def _compare(backup: Backup, restored: Snapshot, *, point_in_time: bool = False) -> dict[str, Any]:
    """The restored copy holds what the backup recorded: the same latest migration per app and
    the same row count per key table. A copy recovered to a point in time is of another moment
    than the recorded counts: only its schema is compared, and what it holds is reported."""
    differences = {"schema": _diff(backup.schema_version, restored.schema_version)}
    if not point_in_time:
        differences["row_counts"] = _diff(backup.row_counts, restored.row_counts)
        if restored.audit_head != backup.audit_head:
            differences["audit_head"] = {
                "expected": backup.audit_head,
                "restored": restored.audit_head,
            }
    differences = {k: v for k, v in differences.items() if v}
    if differences:
        raise DrillStepFailed(
            "compare", f"the restored copy differs from the backup: {differences}", differences
        )
    summary: dict[str, Any] = {
        "tables": len(restored.row_counts),
        "rows": sum(restored.row_counts.values()),
    }
    if point_in_time:
        summary.update(row_counts=restored.row_counts, audit_head=restored.audit_head)
    return summary


def _diff(expected: dict[str, Any], restored: dict[str, Any]) -> dict[str, Any]:
    return {
        key: {"expected": expected.get(key), "restored": restored.get(key)}
        for key in sorted(expected.keys() | restored.keys())
        if expected.get(key) != restored.get(key)
    }


def _manage(scratch: DatabaseTarget, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": scratch.url()}
    env.pop("DATABASE_MIGRATE_URL", None)
    return subprocess.run(  # noqa: S603 - our own manage.py, an argument list
        [sys.executable, str(MANAGE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=getattr(settings, "BACKUP_DRILL_TIMEOUT_SECONDS", 3600),
        check=False,
    )


def _run_checks(scratch: DatabaseTarget) -> dict[str, Any]:
    args = ["run_checks", "--json", "--fail-on", "error"]
    args += [f"--tag={tag}" for tag in DRILL_TAGS]
    args += [f"--check={name}" for name in DRILL_CHECKS]
    done = _manage(scratch, *args)
    try:
        run = json.loads(done.stdout)
    except ValueError:
        raise DrillStepFailed("checks", _last_line(done)) from None
    failing = sorted(
        r["check"] for r in run.get("results", []) if r.get("status") in ("fail", "error")
    )
    summary = {"status": run.get("status"), "failing": failing}
    if done.returncode != 0 or failing:
        raise DrillStepFailed(
            "checks", f"checks fail on the restored copy: {', '.join(failing)}", summary
        )
    return summary


def _verify_audit(scratch: DatabaseTarget, checkpoints: Path) -> dict[str, Any]:
    done = _manage(scratch, "verify_audit_chain", "--json", "--checkpoints", str(checkpoints))
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise DrillStepFailed("audit", _last_line(done)) from None
    if done.returncode != 0:
        raise DrillStepFailed("audit", f"the restored audit chain does not verify: {result}")
    return result


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or done.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def _drill_failed(
    drill: RestoreDrill, exc: BaseException, results: dict[str, Any], actor: Any
) -> NoReturn:
    step = getattr(exc, "step", "restore")
    reason = one_line(exc)
    backup = drill.backup
    with transaction.atomic():
        drill.status = RestoreDrill.Status.FAILED
        drill.finished_at = timezone.now()
        drill.failed_step = step
        drill.error = reason
        drill.results = {**results, **getattr(exc, "results", {})}
        drill.save()
        move_status(
            backup,
            BackupStatus.UNVERIFIED,
            only_from=RESTORABLE,
            verification_error=f"drill #{drill.pk} ({step}): {reason}",
        )
        record("backup.drill_failed", backup, actor, drill=drill.pk, step=step, error=reason)
    alert(
        DRILL_FAILED,
        f"Restore drill #{drill.pk} of backup #{backup.pk} failed ({step}): {reason}",
        {"drill": drill.pk, "backup": backup.pk, "step": step, "error": reason},
    )
    raise BackupFailed(f"restore drill #{drill.pk} failed ({step}): {reason}") from exc
