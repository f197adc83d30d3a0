"""A real `manage.py qcluster` runs a failing task and a good one: the error log records the
failure, and the task metrics count both runs with their times."""

import time

import pytest
from django_q.tasks import async_task

from monitoring.models import ErrorEvent, ErrorSource, TaskBucket
from tests.e2e.test_scheduler import start_cluster, stop_cluster


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_qcluster_task_failure_lands_in_the_error_log():
    # An in-app function called with an argument it does not take: a TypeError in the worker.
    async_task("monitoring.tasks.purge_error_log", "unexpected", task_name="e2e-failing-task")
    async_task("monitoring.tasks.purge_error_log", task_name="e2e-good-task")
    proc, log = start_cluster(Q_MAX_ATTEMPTS="1", Q_GUARD_CYCLE="0.5")
    try:
        deadline = time.monotonic() + 90
        event = None
        while time.monotonic() < deadline and event is None:
            assert proc.poll() is None, "qcluster exited early; see var/qcluster-e2e.log"
            event = ErrorEvent.objects.select_related("group").filter(source="task").first()
            time.sleep(0.5)
        log.seek(0)
        assert event is not None, log.read()[-3000:]
        assert event.source == ErrorSource.TASK and event.task_name == "e2e-failing-task"
        assert event.group.exception_type == "TypeError"
        assert event.payload["func"] == "monitoring.tasks.purge_error_log"
        assert event.payload["args"] == ["unexpected"]

        # Both runs in the task buckets, written by the cluster's monitor process.
        func = "monitoring.tasks.purge_error_log"
        while time.monotonic() < deadline and TaskBucket.objects.filter(func=func).count() < 2:
            time.sleep(0.5)
        runs = {b.outcome: b for b in TaskBucket.objects.filter(func=func)}
        assert runs["failure"].count == 1 and runs["success"].count == 1, runs
        for bucket in runs.values():
            assert 0 <= bucket.run_seconds_sum < 60 and bucket.wait_seconds_sum >= 0
            assert sum(bucket.histogram) == 1
    finally:
        stop_cluster(proc, log)
