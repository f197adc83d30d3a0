"""Fixtures for the alerting tests: a routed policy, a real local SMTP server, and the task
queue run as a qcluster runs it."""

from datetime import timedelta
from multiprocessing import Value

import pytest
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ
from django_q.monitor import monitor
from django_q.queues import Queue
from django_q.worker import worker

from alerts import services
from alerts.models import Alert
from tests.alerts.factories import (
    EscalationPolicyFactory,
    EscalationStepFactory,
    RouteFactory,
    TargetFactory,
)
from tests.receivers import Inbox, free_port

__all__ = ["Inbox", "fire", "free_port", "make_due"]


@pytest.fixture
def smtp_down(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 2


@pytest.fixture
def policy(db):
    first = TargetFactory(name="on-call", address="oncall@example.com")
    second = TargetFactory(name="lead", address="lead@example.com")
    policy = EscalationPolicyFactory(name="finance", ack_timeout_minutes=30)
    EscalationStepFactory(policy=policy, position=0, delay_minutes=0, targets=[first])
    EscalationStepFactory(policy=policy, position=1, delay_minutes=10, targets=[second])
    RouteFactory(
        name="operations",
        source="operations",
        key_pattern="finance.*",
        min_severity="error",
        policy=policy,
    )
    return policy


@pytest.fixture
def cluster(monkeypatch):
    """Runs the queued tasks of one function as a qcluster does: a worker runs each, and the
    monitor saves its result, acknowledges it and sends post_execute (where integrity keeps a
    task's failed last attempt as a dead letter). Returns how many ran."""
    # Workers close stale connections between tasks; here that would end the test's
    # transaction, which holds the rows the tasks read.
    monkeypatch.setattr("django_q.worker.close_old_django_connections", lambda: None)
    monkeypatch.setattr("django_q.monitor.close_old_django_connections", lambda: None)

    def run(func: str = "alerts.tasks.send_delivery") -> int:
        broker = get_broker()
        ran = 0
        for row in OrmQ.objects.filter(key=broker.list_key).order_by("pk"):
            task = dict(row.task)
            if task.get("func") != func:
                continue
            task["ack_id"] = row.pk
            tasks, results = Queue(), Queue()
            tasks.put(task)
            tasks.put("STOP")
            worker(tasks, results, Value("f", -1))
            results.put("STOP")
            monitor(results, broker)
            ran += 1
        return ran

    return run


def fire(key="finance.journal_entry_approve", severity="error"):
    return services.raise_alert(
        source="operations",
        key=key,
        severity=severity,
        title="Approval failed",
        details={"dead_letter": 7},
    )


def make_due(alert):
    Alert.objects.filter(pk=alert.pk).update(
        next_escalation_at=timezone.now() - timedelta(seconds=1)
    )
