"""Webhook and SMS deliveries against real local HTTP receivers."""

import hashlib
import hmac
import json
import logging
from urllib.parse import parse_qs

import pytest
from django.core.management import CommandError, call_command

from alerts import channels, services
from alerts.checks import webhook_secret_set
from alerts.models import Alert, Delivery, Target
from config.errors import DomainError
from integrity.models import DeadLetter
from tests.alerts.factories import EscalationStepFactory, RouteFactory, TargetFactory
from tests.receivers import Receiver


@pytest.fixture
def local(settings):
    """Local receivers live on 127.0.0.1, which the outbound rules refuse unless allowed."""
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def receiver(local):
    r = Receiver()
    yield r
    r.stop()


def route_to(target: Target) -> None:
    """Every alert notifies `target` first."""
    step = EscalationStepFactory(position=0, targets=[target])
    RouteFactory(name="all", policy=step.policy)


def fire(title="Dead-letter queue too long", **details):
    return services.raise_alert(
        source="deadletters", key="queue", severity="critical", title=title, details=details
    )


def test_webhook_body_is_signed_and_details_are_redacted(db, receiver, settings):
    settings.ALERT_WEBHOOK_SECRET = "s3cret"
    route_to(TargetFactory(name="hook", channel="webhook", address=receiver.url + "/in"))
    alert = fire(open=12, api_token="abc123", card="4111 1111 1111 1111")
    services.alert_escalate_due()
    (request,) = receiver.requests
    body = request["body"]
    timestamp = request["headers"]["X-Ledgerguard-Timestamp"]
    expected = hmac.new(b"s3cret", timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert request["headers"]["X-Ledgerguard-Signature"] == f"v1={expected}"
    payload = json.loads(body)
    assert payload["version"] == 1 and payload["event"] == "alert.firing"
    assert payload["alert"]["id"] == alert.pk and payload["alert"]["severity"] == "critical"
    assert payload["alert"]["details"]["open"] == 12
    assert payload["alert"]["details"]["api_token"] == "[redacted]"
    assert "4111" not in body.decode()
    assert Delivery.objects.get().status == "sent"


def test_slack_format(db, receiver):
    route_to(
        TargetFactory(name="slack", channel="webhook", address=receiver.url, webhook_format="slack")
    )
    fire()
    services.alert_escalate_due()
    assert json.loads(receiver.requests[0]["body"])["text"].startswith("*[CRITICAL]* Dead-letter")


def test_receiver_errors_retry_but_4xx_goes_to_the_fallback(db, local):
    failing, backup = Receiver(status=503), Receiver()
    try:
        fallback = TargetFactory(name="backup", channel="webhook", address=backup.url)
        route_to(
            TargetFactory(name="hook", channel="webhook", address=failing.url, fallback=fallback)
        )
        fire()
        services.alert_escalate_due()
        first = Delivery.objects.get(target__name="hook")
        assert first.status == "pending" and "HTTP 503" in first.last_error  # retried later
        failing.status = 400  # the receiver now refuses it for good
        Delivery.objects.filter(pk=first.pk).update(next_attempt_at="2000-01-01T00:00:00Z")
        services.delivery_retry_due()
        first.refresh_from_db()
        assert first.status == "failed"
        assert Delivery.objects.get(target=fallback).status == "sent"
        assert len(backup.requests) == 1
    finally:
        failing.stop()
        backup.stop()


def test_sms_through_a_twilio_compatible_provider(db, receiver, settings):
    settings.SMS_BACKEND, settings.SMS_PROVIDER_URL = "twilio", receiver.url
    settings.SMS_ACCOUNT_SID, settings.SMS_AUTH_TOKEN = "AC42", "tok"
    settings.SMS_FROM_NUMBER = "+15550000"
    route_to(TargetFactory(name="pager", channel="sms", address="+15551234"))
    alert = fire(title="x" * 300, api_token="abc123")
    services.alert_escalate_due()
    (request,) = receiver.requests
    assert request["path"] == "/2010-04-01/Accounts/AC42/Messages.json"
    assert request["headers"]["Authorization"].startswith("Basic ")
    form = {k: v[0] for k, v in parse_qs(request["body"].decode()).items()}
    assert form["To"] == "+15551234" and form["From"] == "+15550000"
    assert len(form["Body"]) <= 160 and form["Body"].startswith(f"Ledgerguard CRITICAL #{alert.pk}")
    assert "abc123" not in form["Body"]


def test_sms_is_for_critical_alerts_only_by_default_and_console_works_locally(db, settings):
    settings.SMS_BACKEND = "console"
    route_to(TargetFactory(name="pager", channel="sms", address="+15551234"))
    services.raise_alert(source="deadletters", key="queue", severity="error", title="Not urgent")
    services.alert_escalate_due()
    assert not Delivery.objects.exists()  # error < critical: no SMS
    services.raise_alert(source="deadletters", key="other", severity="critical", title="Urgent")
    services.alert_escalate_due()
    delivery = Delivery.objects.get()
    assert delivery.status == "sent" and "console" in delivery.response


# Outbound rules at delivery time (config/outbound.py) -------------------------------------


def test_a_stored_file_url_fails_for_good_and_reads_nothing(
    db, settings, cluster, django_capture_on_commit_callbacks
):
    """The reviewed hole: file:///proc/self/environ was "delivered" and the environment stored
    in the delivery's response. A target stored before the rules existed must fail safely."""
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True  # not even this lets a file URL through
    route_to(TargetFactory(name="hook", channel="webhook", address="file:///proc/self/environ"))
    fire()
    with django_capture_on_commit_callbacks(execute=True):
        services.alert_escalate_due()
    cluster()  # its task fails for it: the failure path keeps it as a dead letter
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 1  # permanent: no retry
    assert delivery.response == ""
    assert "outbound.scheme_not_allowed" in delivery.last_error
    assert settings.SECRET_KEY not in delivery.last_error
    assert DeadLetter.objects.filter(operation="alerts.tasks.send_delivery").count() == 1


def test_a_stored_private_address_is_refused_at_delivery_and_the_fallback_used(db, smtp):
    r = Receiver()  # on 127.0.0.1, and OUTBOUND_ALLOW_PRIVATE_ADDRESSES is off
    try:
        fallback = TargetFactory(name="mail", channel="email", address="ops@example.com")
        route_to(
            TargetFactory(name="hook", channel="webhook", address=r.url + "/in", fallback=fallback)
        )
        fire()
        services.alert_escalate_due()
    finally:
        r.stop()
    first = Delivery.objects.get(target__name="hook")
    assert first.status == "failed" and "outbound.address_not_allowed" in first.last_error
    assert first.response == "" and r.requests == []
    assert Delivery.objects.get(target=fallback).status == "sent"
    assert [to for to, _ in smtp.messages] == [["ops@example.com"]]


def test_redirects_are_not_followed_at_delivery(db, receiver):
    inner = Receiver()
    try:
        receiver.status = 307
        receiver.headers["Location"] = inner.url + "/internal"
        route_to(TargetFactory(name="hook", channel="webhook", address=receiver.url))
        fire()
        services.alert_escalate_due()
    finally:
        inner.stop()
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and "redirects are not followed" in delivery.last_error
    assert inner.requests == []


def test_the_stored_response_is_a_short_masked_excerpt(db, receiver):
    receiver.body = b'{"received": true, "secret": "hunter2"}\n' + b"A" * 50_000
    route_to(TargetFactory(name="hook", channel="webhook", address=receiver.url))
    fire()
    services.alert_escalate_due()
    delivery = Delivery.objects.get()
    assert delivery.status == "sent"
    assert delivery.response.startswith('200 {"received": true, "secret": [redacted]}')
    assert len(delivery.response) <= 210 and "hunter2" not in delivery.response


def test_errors_name_the_host_never_the_secret_path(db, local):
    failing = Receiver(status=503)
    try:
        url = failing.url + "/services/T000/B000/s3cr3tT0k3n"
        route_to(TargetFactory(name="hook", channel="webhook", address=url))
        alert = fire()
        services.alert_escalate_due()
    finally:
        failing.stop()
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and f"HTTP 503 from {failing.url}" in delivery.last_error
    notes = " ".join(alert.events.values_list("note", flat=True))
    assert "s3cr3tT0k3n" not in delivery.last_error + notes


# Signing ------------------------------------------------------------------------------


def test_without_a_secret_webhooks_go_unsigned_never_signed_with_an_empty_key(
    db, receiver, settings, caplog
):
    settings.ALERT_WEBHOOK_SECRET = ""
    route_to(TargetFactory(name="hook", channel="webhook", address=receiver.url))
    with caplog.at_level(logging.WARNING, logger="ledgerguard.alerts.channels"):
        fire()
        services.alert_escalate_due()
    (request,) = receiver.requests
    assert "X-Ledgerguard-Signature" not in request["headers"]
    assert "X-Ledgerguard-Timestamp" not in request["headers"]
    assert Delivery.objects.get().status == "sent"
    assert "ALERT_WEBHOOK_SECRET is not set" in caplog.text
    with pytest.raises(ValueError, match="empty key"):
        channels.sign("", "1700000000", b"{}")


def test_check_deploy_warns_without_a_webhook_secret(settings):
    settings.ALERT_WEBHOOK_SECRET = ""
    assert [w.id for w in webhook_secret_set(None)] == ["alerts.W001"]
    settings.ALERT_WEBHOOK_SECRET = "s3cret"
    assert webhook_secret_set(None) == []


# Saving targets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "code"),
    [
        ("file:///proc/self/environ", "outbound.scheme_not_allowed"),
        ("http://127.0.0.1:8000/hook", "outbound.address_not_allowed"),
        ("http://169.254.169.254/latest/meta-data/", "outbound.address_not_allowed"),
        ("http://2130706433/", "outbound.host_invalid"),
        ("https://user:pw@hooks.example.com/x", "outbound.credentials_in_url"),
    ],
)
def test_target_check_refuses_what_the_outbound_rules_refuse(db, address, code):
    with pytest.raises(DomainError) as caught:
        services.target_check(channel="webhook", address=address)
    assert caught.value.code == code and caught.value.http_status == 400
    assert list(caught.value.fields) == ["address"]
    services.target_check(channel="email", address="ops@example.com")  # not a URL: no rule
    services.target_check(channel="webhook", address="https://93.184.215.14/hook")


def test_admin_refuses_a_webhook_target_the_rules_refuse(admin_user, client):
    client.force_login(admin_user)
    form = {
        "name": "hook",
        "channel": "webhook",
        "address": "file:///proc/self/environ",
        "webhook_format": "json",
        "is_active": "on",
    }
    response = client.post("/admin/alerts/target/add/", form)
    assert response.status_code == 200  # the form again, with the error
    assert b"outbound.scheme_not_allowed" in response.content
    form["address"] = "http://[::ffff:127.0.0.1]/x"
    assert b"outbound.address_not_allowed" in client.post("/admin/alerts/target/add/", form).content
    assert not Target.objects.exists()
    form["address"] = "https://93.184.215.14/hook"
    assert client.post("/admin/alerts/target/add/", form).status_code == 302
    assert Target.objects.get().address == "https://93.184.215.14/hook"


def test_send_test_alert_refuses_a_url_the_rules_refuse(db):
    with pytest.raises(CommandError, match=r"outbound\.scheme_not_allowed") as caught:
        call_command("send_test_alert", "--channel", "webhook", "--to", "file:///etc/passwd")
    assert caught.value.returncode == 2
    assert not Target.objects.exists() and not Alert.objects.exists()
