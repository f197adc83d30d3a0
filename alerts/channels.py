"""Delivery channels. Each sends one notification or raises DeliveryError.

DeliveryError(permanent=False) is retried with backoff; permanent ones (a refused recipient)
go to the target's fallback at once.
"""

import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils.html import escape

from alerts.models import Alert, Channel, Delivery


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def _subject(alert: Alert, kind: str) -> str:
    prefix = "RESOLVED" if kind == Delivery.Kind.RESOLVED else alert.severity.upper()
    return f"[Ledgerguard {prefix}] {alert.title}"[:200]


def _admin_link(alert: Alert) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/admin/alerts/alert/{alert.pk}/change/"


def send_email(delivery: Delivery) -> str:
    alert = delivery.alert
    link = _admin_link(alert)
    lines = [
        alert.title,
        "",
        f"Severity: {alert.severity}   State: {alert.state}   Occurrences: {alert.occurrences}",
        f"Source: {alert.source}   Key: {alert.key}",
        f"First seen: {alert.first_seen:%Y-%m-%d %H:%M:%S %Z}",
        "",
        f"Open it: {link}",
    ]
    html = (
        f"<h2>{escape(alert.title)}</h2><p><b>{escape(alert.severity)}</b>, "
        f"{escape(alert.state)}, {alert.occurrences} occurrence(s)<br>"
        f"{escape(alert.source)} / {escape(alert.key)}</p>"
        f'<p><a href="{escape(link)}">Open the alert</a></p>'
    )
    message = EmailMultiAlternatives(
        subject=_subject(alert, delivery.kind),
        body="\n".join(lines),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.target.address],
        headers={"X-Ledgerguard-Alert": str(alert.pk)},
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"recipient refused: {exc}", permanent=True) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP failed: {exc}") from exc
    return "accepted by the mail server"


CHANNELS = {Channel.EMAIL: send_email}


def send(delivery: Delivery) -> str:
    try:
        sender = CHANNELS[delivery.channel]
    except KeyError:
        raise DeliveryError(f"the {delivery.channel} channel is not available yet",
                            permanent=True) from None  # fmt: skip
    return sender(delivery)
