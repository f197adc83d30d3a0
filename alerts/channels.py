"""Delivery channels. Each sends one notification or raises DeliveryError.

DeliveryError(permanent=False) is retried with backoff; permanent ones (a refused recipient)
go to the target's fallback at once.
"""

import base64
import json
import logging
import smtplib
import urllib.parse
from collections.abc import Callable
from typing import Any

from anymail.exceptions import AnymailError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse
from django.utils.html import escape

from alerts.acklinks import ack_token
from alerts.exceptions import DeliveryError
from alerts.models import Alert, Channel, Delivery
from config import outbound
from config.sanitize import sanitize

logger = logging.getLogger("ledgerguard.alerts.channels")
sms_logger = logging.getLogger("ledgerguard.alerts.sms")


def _subject(alert: Alert, kind: str) -> str:
    prefix = "RESOLVED" if kind == Delivery.Kind.RESOLVED else alert.severity.upper()
    return f"[Ledgerguard {prefix}] {alert.title}"[:200]


# The runbook entry for each alert source (docs/runbooks.md headings as GitHub anchors).
RUNBOOK_ANCHORS = {
    "operations": "operationsoperation-name",
    "deadletters": "deadlettersqueue",
    "tasks": "tasksfunction-path",
    "errors": "errorsfingerprint-prefix-new-error",
}


def runbook_link(alert: Alert) -> str:
    anchor = RUNBOOK_ANCHORS.get(alert.source)
    if alert.source == "deadletters" and alert.key.startswith("failed:"):
        anchor = "deadlettersfailedid"
    if alert.source in ("checks", "audit"):  # an entry per key: "## checks/finance.x_y"
        anchor = alert.source + alert.key.replace(".", "").lower()
    return f"{settings.ALERT_RUNBOOK_URL}#{anchor}" if anchor else settings.ALERT_RUNBOOK_URL


def _admin_link(alert: Alert) -> str:
    return f"{settings.SITE_URL.rstrip('/')}{reverse('admin:alerts_alert_change', args=[alert.pk])}"


def _ack_link(delivery: Delivery) -> str:
    token = ack_token(delivery=delivery)
    return f"{settings.SITE_URL.rstrip('/')}/alerts/ack/{token}/"


def summary_lines(delivery: Delivery) -> list[str]:
    return [
        f"- [{i['severity']}] #{i['alert']} {i['title']}"
        + (" (resolved)" if i["kind"] == Delivery.Kind.RESOLVED else "")
        for i in delivery.items
    ]


def send_email(delivery: Delivery) -> str:
    if delivery.kind == Delivery.Kind.SUMMARY:
        lines = [
            f"{len(delivery.items)} alert notifications, grouped or held back by the rate limit:",
            "",
            *summary_lines(delivery),
            "",
            f"Alerts: {settings.SITE_URL.rstrip('/')}{reverse('admin:alerts_alert_changelist')}",
        ]
        message = EmailMultiAlternatives(
            subject=f"[Ledgerguard] {len(delivery.items)} alerts: {delivery.items[-1]['title']}"[
                :200
            ],
            body="\n".join(lines),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[delivery.target.address],
        )
        _send_mail(message)
        return "summary accepted by the mail server"
    alert = delivery.alert
    link = _admin_link(alert)
    ack = _ack_link(delivery) if delivery.kind == Delivery.Kind.NOTIFY else ""
    lines = [
        alert.title,
        "",
        f"Severity: {alert.severity}   State: {alert.state}   Occurrences: {alert.occurrences}",
        f"Source: {alert.source}   Key: {alert.key}",
        f"First seen: {alert.first_seen:%Y-%m-%d %H:%M:%S %Z}",
        "",
        f"Open it: {link}",
        f"Runbook: {runbook_link(alert)}",
    ]
    if ack:
        lines.append(f"Acknowledge (stops escalation): {ack}")
    html = (
        f"<h2>{escape(alert.title)}</h2><p><b>{escape(alert.severity)}</b>, "
        f"{escape(alert.state)}, {alert.occurrences} occurrence(s)<br>"
        f"{escape(alert.source)} / {escape(alert.key)}</p>"
        f'<p><a href="{escape(link)}">Open the alert</a></p>'
        + (f'<p><a href="{escape(ack)}">Acknowledge</a></p>' if ack else "")
    )
    message = EmailMultiAlternatives(
        subject=_subject(alert, delivery.kind),
        body="\n".join(lines),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.target.address],
        headers={"X-Ledgerguard-Alert": str(alert.pk)},
    )
    message.attach_alternative(html, "text/html")
    _send_mail(message)
    return "accepted by the mail server"


def _send_mail(message: EmailMultiAlternatives) -> None:
    """SMTP or an anymail provider; their failures become DeliveryErrors."""
    try:
        message.send(fail_silently=False)
    except (smtplib.SMTPRecipientsRefused, AnymailRecipientsRefused) as exc:
        raise DeliveryError(f"recipient refused: {exc}", permanent=True) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP failed: {exc}") from exc
    except AnymailError as exc:
        raise DeliveryError(f"email provider failed: {exc}") from exc


def _post(url: str, body: bytes, headers: dict[str, str]) -> str:
    """POST under the outbound rules (config/outbound.py); a refused URL fails for good."""
    timeout = settings.ALERT_HTTP_TIMEOUT
    try:
        answer = outbound.request(url, body=body, headers=headers, timeout=timeout)
    except outbound.OutboundError as exc:
        raise DeliveryError(str(exc), permanent=exc.permanent) from exc
    return str(answer)


def webhook_payload(delivery: Delivery) -> dict[str, Any]:
    """Schema version 1 (docs/alerts.md). Details are sanitized: webhooks leave our hands."""
    alert = delivery.alert
    return {
        "version": 1,
        "event": "alert.resolved" if delivery.kind == Delivery.Kind.RESOLVED else "alert.firing",
        "delivery_id": delivery.pk,
        "alert": {
            "id": alert.pk,
            "source": alert.source,
            "key": alert.key,
            "severity": alert.severity,
            "state": alert.state,
            "title": alert.title,
            "occurrences": alert.occurrences,
            "first_seen": alert.first_seen.isoformat(),
            "last_seen": alert.last_seen.isoformat(),
            "details": sanitize(alert.details),
            "url": _admin_link(alert),
            "runbook": runbook_link(alert),
        },
    }


sign = outbound.sign  # v1=<hex HMAC-SHA256 of "<timestamp>.<body>">; never with an empty key


def send_webhook(delivery: Delivery) -> str:
    payload = webhook_payload(delivery)
    if delivery.kind == Delivery.Kind.SUMMARY:
        payload = {
            "version": 1,
            "event": "alert.summary",
            "delivery_id": delivery.pk,
            "held": delivery.items,
        }
        if delivery.target.webhook_format == "slack":
            payload = {
                "text": "\n".join(["Held back by the rate limit:", *summary_lines(delivery)])
            }
    elif delivery.target.webhook_format == "slack":
        a = payload["alert"]
        verb = "RESOLVED" if delivery.kind == Delivery.Kind.RESOLVED else a["severity"].upper()
        payload = {"text": f"*[{verb}]* {a['title']} ({a['source']}/{a['key']}) <{a['url']}|open>"}
    body = json.dumps(payload, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Ledgerguard-Alerts/1"}
    if settings.ALERT_WEBHOOK_SECRET:
        headers.update(outbound.signature_headers(settings.ALERT_WEBHOOK_SECRET, body))
    else:
        # Unsigned rather than signed with an empty key, which anyone could forge; receivers
        # that check signatures refuse it, and `check --deploy` warns (alerts.W001).
        logger.warning("ALERT_WEBHOOK_SECRET is not set: delivery %s goes unsigned", delivery.pk)
    return _post(delivery.target.address, body, headers)


def sms_text(delivery: Delivery) -> str:
    """One 160-character segment; titles only, never details (SMS is the least private)."""
    alert = delivery.alert
    if delivery.kind == Delivery.Kind.SUMMARY:
        return f"Ledgerguard: {len(delivery.items)} alert notifications held back; see the admin."
    verb = "RESOLVED" if delivery.kind == Delivery.Kind.RESOLVED else alert.severity.upper()
    text = f"Ledgerguard {verb} #{alert.pk}: {alert.title}"
    return text if len(text) <= 160 else text[:157] + "..."


def send_sms(delivery: Delivery) -> str:
    """SMS_BACKEND "twilio": a Twilio-compatible REST API at SMS_PROVIDER_URL; "console": the
    message is written to the log (local use)."""
    if settings.SMS_BACKEND == "console":
        sms_logger.warning("SMS to %s: %s", delivery.target.address, sms_text(delivery))
        return "written to the console (SMS_BACKEND=console)"
    if not settings.SMS_PROVIDER_URL:
        raise DeliveryError("SMS_PROVIDER_URL is not set", permanent=True)
    sid = settings.SMS_ACCOUNT_SID
    url = f"{settings.SMS_PROVIDER_URL.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
    body = urllib.parse.urlencode(
        {
            "To": delivery.target.address,
            "From": settings.SMS_FROM_NUMBER,
            "Body": sms_text(delivery),
        }
    ).encode()
    token = base64.b64encode(f"{sid}:{settings.SMS_AUTH_TOKEN}".encode()).decode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": f"Basic {token}",
    }
    return _post(url, body, headers)


CHANNELS: dict[str, Callable[[Delivery], str]] = {
    Channel.EMAIL: send_email,
    Channel.WEBHOOK: send_webhook,
    Channel.SMS: send_sms,
}


def send(delivery: Delivery) -> str:
    try:
        sender = CHANNELS[delivery.channel]
    except KeyError:
        raise DeliveryError(
            f"the {delivery.channel} channel is not available yet", permanent=True
        ) from None
    return sender(delivery)
