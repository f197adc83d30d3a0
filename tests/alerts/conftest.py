"""Fixtures for the alerting tests: a real local SMTP server and a routed policy."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import services
from alerts.models import Alert, EscalationPolicy, EscalationStep, Route, Target
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
    first = Target.objects.create(name="on-call", channel="email", address="oncall@example.com")
    second = Target.objects.create(name="lead", channel="email", address="lead@example.com")
    policy = EscalationPolicy.objects.create(name="finance", ack_timeout_minutes=30)
    EscalationStep.objects.create(policy=policy, position=0, delay_minutes=0).targets.add(first)
    EscalationStep.objects.create(policy=policy, position=1, delay_minutes=10).targets.add(second)
    Route.objects.create(
        name="operations",
        source="operations",
        key_pattern="finance.*",
        min_severity="error",
        policy=policy,
    )
    return policy


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
