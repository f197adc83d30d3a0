"""Task metrics: each run counted in its minute with its run and queue times, and the queue's
depth and age at /metrics (the real cluster's runs: tests/monitoring/test_e2e_task_failure.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_q.tasks import async_task
from prometheus_client.parser import text_string_to_metric_families

from monitoring.histogram import slot_of
from monitoring.models import TaskBucket
from monitoring.receivers import on_task_done, on_task_start

QUEUED = datetime(2026, 12, 3, 3, 0, 0, tzinfo=UTC)


def run(func, *, success: bool, waited: float, ran: float) -> None:
    task = {"func": func, "started": QUEUED, "success": success}
    on_task_start(sender=None, func=func, task=task)
    task["ledgerguard_exec_started"] = QUEUED + timedelta(seconds=waited)
    task["stopped"] = QUEUED + timedelta(seconds=waited + ran)
    on_task_done(sender=None, task=task)


@pytest.mark.django_db
def test_each_run_is_counted_with_its_run_and_queue_times():
    run("backups.tasks.backup_and_verify", success=True, waited=2.0, ran=0.3)
    run("backups.tasks.backup_and_verify", success=True, waited=1.0, ran=0.02)
    run("backups.tasks.backup_and_verify", success=False, waited=0.5, ran=12.0)
    ok = TaskBucket.objects.get(outcome="success")
    assert ok.minute == QUEUED and ok.count == 2
    assert ok.run_seconds_sum == pytest.approx(0.32) and ok.run_seconds_max == pytest.approx(0.3)
    assert ok.wait_seconds_sum == pytest.approx(3.0)
    assert ok.histogram[slot_of(0.3)] == 1 and ok.histogram[slot_of(0.02)] == 1
    failed = TaskBucket.objects.get(outcome="failure")
    assert failed.count == 1 and failed.histogram[-1] == 1  # above 10 s


@pytest.mark.django_db
def test_a_task_without_times_is_not_counted_and_breaks_nothing():
    on_task_done(sender=None, task={"func": "x.y", "success": True})
    assert not TaskBucket.objects.exists()


def gauges(body: bytes) -> dict[str, float]:
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if not sample.labels:
                found[sample.name] = sample.value
    return found


@pytest.mark.django_db
def test_metrics_show_the_queue_depth_and_the_age_of_the_oldest_task(settings):
    for _ in range(3):
        async_task("monitoring.tasks.purge_error_log")
    figures = gauges(Client().get("/metrics").content)
    assert figures["ledgerguard_task_queue_depth"] == 3
    assert figures["ledgerguard_task_queue_in_flight"] == 0
    assert 0 <= figures["ledgerguard_task_queue_oldest_age_seconds"] < 60


@pytest.mark.django_db
def test_metrics_show_the_recent_runs_per_function():
    now = timezone.now()
    task = {"func": "alerts.tasks.escalate_alerts", "success": True, "started": now}
    task["ledgerguard_exec_started"] = now
    task["stopped"] = now + timedelta(seconds=0.2)
    on_task_done(sender=None, task=task)
    body = Client().get("/metrics").content.decode()
    families = {f.name: f for f in text_string_to_metric_families(body)}
    runs = families["ledgerguard_task_runs_15m"].samples
    assert [(s.labels["func"], s.labels["outcome"], s.value) for s in runs] == [
        ("alerts.tasks.escalate_alerts", "success", 1.0)
    ]
