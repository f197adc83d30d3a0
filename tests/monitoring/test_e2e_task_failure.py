"""A real `manage.py qcluster` runs a failing task; the error log records it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django_q.tasks import async_task

from monitoring.models import ErrorEvent, ErrorSource
from tests.e2e.test_scheduler import test_database_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_qcluster_task_failure_lands_in_the_error_log():
    # An in-app function called with an argument it does not take: a TypeError in the worker.
    async_task("monitoring.tasks.purge_error_log", "unexpected", task_name="e2e-failing-task")
    env = os.environ | {
        "DATABASE_URL": test_database_url(),
        "Q_POLL": "0.2",
        "Q_WORKERS": "1",
        "Q_MAX_ATTEMPTS": "1",
    }
    log = (ROOT / "var" / "qcluster-monitoring-e2e.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        event = None
        while time.monotonic() < deadline and event is None:
            assert proc.poll() is None, "qcluster exited early; see the log"
            event = ErrorEvent.objects.select_related("group").filter(source="task").first()
            time.sleep(0.5)
        log.seek(0)
        assert event is not None, log.read()[-3000:]
        assert event.source == ErrorSource.TASK and event.task_name == "e2e-failing-task"
        assert event.group.exception_type == "TypeError"
        assert event.payload["func"] == "monitoring.tasks.purge_error_log"
        assert event.payload["args"] == ["unexpected"]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()
