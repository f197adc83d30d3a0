"""SIGKILL a real django-q2 worker in the middle of an operation.

The half-done operation leaves nothing behind; the broker presents the unacknowledged task
again, and the second run leaves all of it: never half.
"""

import os
import signal
import time

import pytest
from django_q.tasks import async_task

from finance.models import Account
from tests.e2e.test_scheduler import start_cluster, stop_cluster


def wait_for(predicate, seconds: float, proc):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "qcluster exited early; see var/qcluster-e2e.log"
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return None


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_killed_worker_leaves_all_or_nothing(tmp_path):
    marker = tmp_path / "worker.pid"
    # timeout < retry, both short: the unacknowledged task comes back after Q_RETRY seconds.
    proc, log = start_cluster(Q_TIMEOUT="3", Q_RETRY="4", Q_MAX_ATTEMPTS="3", Q_GUARD_CYCLE="0.5")
    try:
        async_task("tests.e2e.jobs.half_then_hang", "9100", str(marker))
        assert wait_for(marker.exists, 60, proc), "the task never started"
        time.sleep(0.3)  # inside the sleep, both accounts written, nothing committed
        pid = int(marker.read_text())
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        codes = set(Account.objects.filter(code__startswith="9100").values_list("code", flat=True))
        assert codes == set(), "a killed worker left half an operation behind"
        done = wait_for(
            lambda: Account.objects.filter(code__startswith="9100").count() == 2, 60, proc
        )
        log.seek(0)
        assert done, log.read()[-3000:]
        assert sorted(
            Account.objects.filter(code__startswith="9100").values_list("code", flat=True)
        ) == ["9100A", "9100B"]
    finally:
        stop_cluster(proc, log)
