"""Routing, escalation steps and email delivery, against a real local SMTP server."""

import re
import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from aiosmtpd.controller import Controller
from anymail.exceptions import AnymailAPIError
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from alerts import services
from alerts.models import Alert, Delivery, Target
from integrity.models import DeadLetter
from integrity.services import deadletter_retry
from tests.alerts.conftest import Inbox, fire, make_due
from tests.alerts.factories import RouteFactory, TargetFactory


def test_routes_choose_a_policy_by_source_key_and_severity(policy):
    assert fire().policy == policy
    assert fire(key="finance.other", severity="warning").policy is None  # below min severity
    assert fire(key="integrity.x").policy is None  # key does not match


def test_escalation_notifies_each_step_then_resolution_to_everyone(
    policy, smtp, django_capture_on_commit_callbacks
):
    alert = fire()
    assert services.alert_escalate_due() == 1
    ((to, first),) = smtp.messages
    assert to == ["oncall@example.com"]
    assert "[Ledgerguard ERROR] Approval failed" in first["Subject"]
    body = first.get_payload()[0].get_payload(decode=True).decode()
    assert f"/admin/alerts/alert/{alert.pk}/change/" in body
    alert.refresh_from_db()
    assert alert.step == 0 and alert.next_escalation_at > timezone.now() + timedelta(minutes=9)
    assert services.alert_escalate_due() == 0  # next step not due yet
    make_due(alert)
    assert services.alert_escalate_due() == 1
    assert [m[0] for m in smtp.messages][-1] == ["lead@example.com"]
    fire()  # a repeat does not notify again
    assert len(smtp.messages) == 2
    with django_capture_on_commit_callbacks(execute=True):
        services.resolve_alert(source="operations", key="finance.journal_entry_approve")
    resolved = sorted(m[0][0] for m in smtp.messages[2:])
    assert resolved == ["lead@example.com", "oncall@example.com"]
    assert all("RESOLVED" in m[1]["Subject"] for m in smtp.messages[2:])


def test_acknowledging_stops_escalation_until_the_timeout(policy, smtp, operator):
    alert = fire()
    services.alert_escalate_due()
    services.alert_acknowledge(alert=alert, actor=operator)
    make_due(alert)  # even if a due time were left behind
    Alert.objects.filter(pk=alert.pk).update(next_escalation_at=None)
    assert services.alert_escalate_due() == 0 and len(smtp.messages) == 1
    Alert.objects.filter(pk=alert.pk).update(acknowledged_at=timezone.now() - timedelta(hours=1))
    assert services.alert_escalate_due() == 1  # ack timed out: back to escalating
    alert.refresh_from_db()
    assert alert.state == "firing" and [m[0] for m in smtp.messages][-1] == ["lead@example.com"]


def test_a_rerun_never_notifies_a_target_twice(policy, smtp):
    alert = fire()
    services.alert_escalate_due()
    # As if a worker died after notifying and before moving the alert on.
    Alert.objects.filter(pk=alert.pk).update(step=-1, next_escalation_at=timezone.now())
    services.alert_escalate_due()
    assert len(smtp.messages) == 1
    assert Delivery.objects.filter(alert=alert).count() == 1


def test_smtp_down_retries_then_falls_back_or_dead_letters(
    policy, smtp_down, settings, cluster, django_capture_on_commit_callbacks
):
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 2
    alert = fire()
    services.alert_escalate_due()
    delivery = Delivery.objects.get(alert=alert)
    assert delivery.status == "pending" and delivery.attempts == 1
    assert "SMTP failed" in delivery.last_error and delivery.next_attempt_at is not None
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        services.delivery_retry_due()
    assert cluster() == 1  # its task fails for it, on its last attempt
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 2
    letter = DeadLetter.objects.get(operation="alerts.tasks.send_delivery")
    assert letter.payload["args"] == [delivery.pk]
    kinds = [e.kind for e in alert.events.all()]
    assert kinds.count("delivery_failed") == 2  # the failure is visible on the alert


def test_permanent_failure_uses_the_fallback_target(policy, smtp, settings):
    settings.SMS_BACKEND, settings.SMS_PROVIDER_URL = "twilio", ""  # SMS cannot work
    settings.ALERT_SMS_MIN_SEVERITY = "info"
    sms = TargetFactory(name="pager", channel="sms", address="+15550100")
    email = Target.objects.get(name="on-call")
    email.fallback = TargetFactory(name="backup", address="backup@example.com")
    email.save()
    Target.objects.filter(name="on-call").update(channel="sms")  # a channel not available yet
    Target.objects.filter(pk=email.pk).update(fallback=email.fallback)
    fire()
    services.alert_escalate_due()
    assert [m[0] for m in smtp.messages] == [["backup@example.com"]]
    assert sms.pk  # the SMS channel arrives with its backend


def test_a_dead_letter_retry_sends_the_failed_delivery(
    policy, smtp_down, settings, cluster, django_capture_on_commit_callbacks
):
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 1
    fire()
    with django_capture_on_commit_callbacks(execute=True):
        services.alert_escalate_due()
    cluster()
    letter = DeadLetter.objects.get(operation="alerts.tasks.send_delivery")
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=settings.EMAIL_PORT)
    controller.start()  # the mail server is back
    try:
        assert deadletter_retry(dead_letter=letter).status == "resolved"
    finally:
        controller.stop()
    assert [m[0] for m in inbox.messages] == [["oncall@example.com"]]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_never_send_the_same_step_twice(policy, smtp):
    alerts = [fire(key=f"finance.op{i}") for i in range(6)]
    barrier = threading.Barrier(2)

    def worker():
        barrier.wait()
        try:
            services.alert_escalate_due()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(smtp.messages) == len(alerts)
    assert Delivery.objects.count() == len(alerts)


def test_send_test_alert_delivers_and_reports(policy, smtp, capsys):
    call_command("send_test_alert", "--to", "me@example.com")
    assert "email me@example.com: sent" in capsys.readouterr().out
    assert [m[0] for m in smtp.messages] == [["me@example.com"]]
    assert not Alert.objects.filter(source="test", state="firing").exists()
    RouteFactory(name="catch-all", policy=policy, position=999)
    call_command("send_test_alert")  # the default route's first step
    assert [m[0] for m in smtp.messages][-1] == ["oncall@example.com"]


def test_send_test_alert_exits_1_when_delivery_fails(db, smtp_down):
    with pytest.raises(CommandError, match="1 of 1 deliveries failed"):
        call_command("send_test_alert", "--to", "me@example.com")
    assert not DeadLetter.objects.exists()


def test_acknowledge_link_works_once_and_only_for_its_alert(policy, smtp, client, settings):
    alert = fire()
    other = fire(key="finance.journal_entry_post")
    services.alert_escalate_due()
    mail = next(m for to, m in smtp.messages if "Approval failed" in m["Subject"])
    body = mail.get_payload()[0].get_payload(decode=True).decode()
    links = re.findall(r"(/alerts/ack/[^/\s]+/)", body)
    assert len(links) == 1
    link = links[0]
    assert client.get(link).status_code == 200  # a page with a button: scanners ack nothing
    assert Alert.objects.get(pk=alert.pk).state == "firing"
    response = client.post(link)
    assert response.status_code == 200
    acked = [a for a in (alert, other) if Alert.objects.get(pk=a.pk).state == "acknowledged"]
    assert len(acked) == 1  # only the alert the link was made for
    assert Alert.objects.get(pk=acked[0].pk).next_escalation_at is None
    assert client.post(link).status_code == 410  # works once
    assert client.post(link[:-3] + "xx/").status_code == 404  # tampered
    settings.ALERT_ACK_LINK_MAX_AGE_HOURS = 0
    time.sleep(1.1)
    services.alert_resolve(alert=acked[0], actor=None)
    fire()
    services.alert_escalate_due()
    fresh = [m for _, m in smtp.messages][-1].get_payload()[0].get_payload(decode=True).decode()
    late = re.findall(r"(/alerts/ack/[^/\s]+/)", fresh)[0]
    time.sleep(1.1)
    assert client.post(late).status_code == 410  # expired


def test_a_storm_of_1000_raises_notifies_each_target_once(policy, smtp):
    for _ in range(1000):
        fire()
        services.alert_escalate_due()
    assert len(smtp.messages) == 1
    alert = Alert.objects.get()
    assert alert.occurrences == 1000 and alert.events.count() < 10


def test_rate_limit_holds_back_and_summarises_per_target(policy, smtp, settings):
    """Many different alerts: a target gets at most N per window, then one summary."""
    settings.ALERT_TARGET_MAX_PER_WINDOW = 3
    for i in range(8):
        fire(key=f"finance.op{i}")
    services.alert_escalate_due()
    assert len(smtp.messages) == 3
    held = Delivery.objects.filter(status="held")
    assert held.count() == 5
    assert services.delivery_summaries_send() == 0  # the window is still full
    Delivery.objects.filter(status="sent").update(sent_at=timezone.now() - timedelta(hours=1))
    assert services.delivery_summaries_send() == 1
    # on_commit inside the test transaction: send the summary now
    summary = Delivery.objects.get(kind="summary")
    services.delivery_send(delivery_id=summary.pk)
    to, message = smtp.messages[-1]
    assert to == ["oncall@example.com"]
    assert "[Ledgerguard] 5 alerts:" in message["Subject"]
    assert Delivery.objects.filter(status="summarised").count() == 5  # not lost


def test_alerts_of_one_source_within_the_group_wait_go_out_as_one(policy, smtp, settings):
    settings.ALERT_GROUP_WAIT_SECONDS = 30
    for i in range(4):
        fire(key=f"finance.batch{i}")
    assert services.alert_escalate_due() == 0  # waiting for the group to gather
    Alert.objects.update(next_escalation_at=timezone.now() - timedelta(seconds=1))
    assert services.alert_escalate_due() == 4
    ((to, message),) = smtp.messages
    assert to == ["oncall@example.com"] and "[Ledgerguard] 4 alerts:" in message["Subject"]
    assert message.get_payload().count("Approval failed") == 4  # each alert listed
    assert Delivery.objects.filter(status="summarised").count() == 4


def test_email_provider_errors_through_anymail_are_retried(policy, settings):
    """A provider (django-anymail's test backend) that fails is a retryable delivery error."""
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    fire()
    with mock.patch(
        "anymail.backends.test.EmailBackend.send_messages",
        side_effect=AnymailAPIError("provider down"),
    ):
        services.alert_escalate_due()
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and "email provider failed" in delivery.last_error
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    services.delivery_retry_due()
    assert Delivery.objects.get().status == "sent"
