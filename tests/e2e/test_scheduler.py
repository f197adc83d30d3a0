"""A real `manage.py qcluster` process runs a declared schedule and stores its result."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule, Success
from django_q.tasks import async_task

from alerts.models import Alert
from integrity.models import CheckRun, DeadLetter, IdempotencyKey
from tests.integrity.factories import IdempotencyKeyFactory

ROOT = Path(__file__).resolve().parents[2]
JOB = "integrity.purge_expired_idempotency_keys"


def test_database_url() -> str:
    s = connection.settings_dict
    if connection.features.guard_dialect == "sqlite":
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or 'localhost'}:{s['PORT'] or 5432}/{s['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


def start_cluster(**extra_env: str) -> tuple[subprocess.Popen, object]:
    env = os.environ | {
        "DATABASE_URL": test_database_url(),
        "Q_POLL": "0.2",
        "Q_GUARD_CYCLE": "30",  # the scheduler runs on the first guard cycle
        "Q_WORKERS": "1",
        **extra_env,
    }
    log = (ROOT / "var" / "qcluster-e2e.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, log


def stop_cluster(proc: subprocess.Popen, log) -> None:
    # SIGKILL: with a 30 s guard cycle a graceful stop takes up to 30 s, and the work
    # these tests wait for is already committed.
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    log.close()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_failed_task_lands_in_the_dead_letter_queue():
    proc, log = start_cluster(Q_MAX_ATTEMPTS="1")
    try:
        async_task("tests.e2e.jobs.always_fails", "disk full")
        deadline = time.monotonic() + 60
        letter = None
        while time.monotonic() < deadline and letter is None:
            assert proc.poll() is None, "qcluster exited early; see var/qcluster-e2e.log"
            letter = DeadLetter.objects.filter(kind="task").first()
            time.sleep(0.3)
        log.seek(0)
        assert letter is not None, log.read()[-3000:]
        assert letter.operation == "tests.e2e.jobs.always_fails"
        assert letter.payload["args"] == ["disk full"]
        assert "always fails: disk full" in letter.error
    finally:
        stop_cluster(proc, log)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_qcluster_runs_scheduled_job_and_stores_result(clerk):
    call_command("sync_schedules")
    IdempotencyKeyFactory(
        user=clerk,
        key="stale",
        scope="POST /x",
        request_hash="h",
        expires_at=timezone.now() - timedelta(hours=1),
    )
    Schedule.objects.filter(name=JOB).update(next_run=timezone.now() - timedelta(seconds=1))
    proc, log = start_cluster()
    try:
        deadline = time.monotonic() + 90
        success = None
        while time.monotonic() < deadline and success is None:
            assert proc.poll() is None, "qcluster exited early; see var/qcluster-e2e.log"
            success = Success.objects.filter(
                func="integrity.tasks.purge_expired_idempotency_keys"
            ).first()
            time.sleep(0.5)
        log.seek(0)
        assert success is not None, log.read()[-3000:]
        assert success.result == 1
        assert not IdempotencyKey.objects.exists()
        schedule = Schedule.objects.get(name=JOB)
        assert schedule.task == success.id and schedule.next_run > timezone.now()
    finally:
        stop_cluster(proc, log)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_qcluster_runs_the_scheduled_integrity_checks():
    """The daily integrity schedule, run by a real cluster, stores a run and alerts."""
    call_command("sync_schedules")
    Schedule.objects.update(next_run=timezone.now() + timedelta(days=1))
    Schedule.objects.filter(name="checks.integrity").update(
        next_run=timezone.now() - timedelta(seconds=1)
    )
    proc, log = start_cluster()
    try:
        deadline = time.monotonic() + 90
        run = None
        while time.monotonic() < deadline and run is None:
            assert proc.poll() is None, "qcluster exited early; see var/qcluster-e2e.log"
            run = CheckRun.objects.exclude(status__in=("queued", "running")).first()
            time.sleep(0.5)
        log.seek(0)
        assert run is not None, log.read()[-3000:]
        assert (run.trigger, run.schedule, run.tags) == (
            "schedule",
            "checks.integrity",
            ["integrity", "audit"],
        )
        names = set(run.results.values_list("check_name", flat=True))
        assert {"integrity.migrations_applied", "audit.verification_recent"} <= names
        # No heartbeat job ran in this database: the scheduler check says so and alerts.
        assert run.results.get(check_name="integrity.scheduler_alive").status == "fail"
        assert Alert.objects.filter(source="checks", key="integrity.scheduler_alive").exists()
    finally:
        stop_cluster(proc, log)
