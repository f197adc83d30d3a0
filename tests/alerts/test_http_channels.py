"""Webhook and SMS deliveries against real local HTTP receivers."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from alerts import services
from alerts.models import Delivery, EscalationPolicy, EscalationStep, Route, Target


class Receiver:
    """A local HTTP server that records requests and answers with a chosen status."""

    def __init__(self, status: int = 200):
        self.status = status
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # http.server calls it by this name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b'{"sid": "SM123"}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def route_to(target: Target) -> None:
    policy = EscalationPolicy.objects.create(name=f"to {target.name}")
    EscalationStep.objects.create(policy=policy, position=0).targets.add(target)
    Route.objects.create(name="all", policy=policy)


def fire(title="Dead-letter queue too long", **details):
    return services.raise_alert(source="deadletters", key="queue", severity="critical",
                                title=title, details=details)  # fmt: skip


def test_webhook_body_is_signed_and_details_are_redacted(db, receiver, settings):
    settings.ALERT_WEBHOOK_SECRET = "s3cret"
    route_to(Target.objects.create(name="hook", channel="webhook", address=receiver.url + "/in"))
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
    route_to(Target.objects.create(name="slack", channel="webhook", address=receiver.url,
                                   webhook_format="slack"))  # fmt: skip
    fire()
    services.alert_escalate_due()
    assert json.loads(receiver.requests[0]["body"])["text"].startswith("*[CRITICAL]* Dead-letter")


def test_receiver_errors_retry_but_4xx_goes_to_the_fallback(db, settings):
    failing, backup = Receiver(status=503), Receiver()
    try:
        fallback = Target.objects.create(name="backup", channel="webhook", address=backup.url)
        route_to(Target.objects.create(name="hook", channel="webhook", address=failing.url,
                                       fallback=fallback))  # fmt: skip
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
    route_to(Target.objects.create(name="pager", channel="sms", address="+15551234"))
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
    route_to(Target.objects.create(name="pager", channel="sms", address="+15551234"))
    services.raise_alert(source="deadletters", key="queue", severity="error", title="Not urgent")
    services.alert_escalate_due()
    assert not Delivery.objects.exists()  # error < critical: no SMS
    services.raise_alert(source="deadletters", key="other", severity="critical", title="Urgent")
    services.alert_escalate_due()
    delivery = Delivery.objects.get()
    assert delivery.status == "sent" and "console" in delivery.response
