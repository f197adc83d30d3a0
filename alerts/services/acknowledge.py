"""Acknowledging an alert: by a user (admin, API) or by the one-click link in a notification.

Someone is on it: acknowledging stops escalation, until the policy's acknowledgement timeout
(services.escalation) makes the alert fire again. A link acknowledges the firing it was sent
for, once.
"""

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from alerts.acklinks import ack_token_read
from alerts.exceptions import AckLinkInvalid, AckLinkSuperseded, AckLinkUsed, AlertNotOpen
from alerts.models import Alert, AlertEvent, AlertState, Delivery
from audit.services import audit_record


@transaction.atomic
def alert_acknowledge(*, alert: Alert, actor: User | None) -> Alert:
    """Someone is on it: stops escalation."""
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.state != AlertState.FIRING:
        raise AlertNotOpen(f"The alert is {alert.state}; only a firing alert is acknowledged.")
    alert.state = AlertState.ACKNOWLEDGED
    alert.acknowledged_at = timezone.now()
    alert.acknowledged_by = actor
    alert.next_escalation_at = None  # acknowledging stops escalation
    alert.save(update_fields=["state", "acknowledged_at", "acknowledged_by", "next_escalation_at"])
    AlertEvent.objects.create(alert=alert, kind="acknowledged", actor=actor)
    audit_record(
        action="alert.acknowledged",
        obj=alert,
        actor=actor,
        changes={"state": [AlertState.FIRING, alert.state]},
        metadata={"method": "user"},
    )
    return alert


def _ack_link(token: str, *, lock: bool) -> tuple[Delivery, Alert]:
    """The delivery and alert a link names, as the link sees them; raises when it is not good
    (changing nothing). `lock`: lock the alert row (the caller holds a transaction)."""
    data = ack_token_read(token)
    # The alert first: a second click waits here, then reads the link as the first left it.
    alerts = Alert.objects.select_for_update() if lock else Alert.objects.all()
    alert = alerts.filter(pk=data["alert"]).first()
    notifications = Delivery.objects.filter(kind=Delivery.Kind.NOTIFY).select_related("target")
    delivery = notifications.filter(pk=data["delivery"], alert_id=data["alert"]).first()
    if alert is None or delivery is None:
        raise AckLinkInvalid("This acknowledge link is not valid.")
    if delivery.ack_used_at is not None:
        raise AckLinkUsed("This acknowledge link was already used.")
    if alert.firing != data["firing"]:
        raise AckLinkSuperseded(
            "This acknowledge link is no longer valid: the alert was acknowledged and has fired "
            "again since; use the link in the newest notification."
        )
    if alert.state != AlertState.FIRING:
        raise AlertNotOpen(f"The alert is already {alert.state}.")
    return delivery, alert


def ack_link_check(*, token: str) -> Alert:
    """What the link's page shows before anyone presses the button: the alert, or the error
    that pressing it would meet. Writes nothing."""
    return _ack_link(token, lock=False)[1]


def alert_acknowledge_by_token(*, token: str) -> Alert:
    """The one-click link: acknowledges the alert and firing it was sent for, once."""
    with transaction.atomic():
        delivery, alert = _ack_link(token, lock=True)
        now = timezone.now()
        # The link is claimed with a conditional update: of two clicks at once, one wins.
        claimed = Delivery.objects.filter(pk=delivery.pk, ack_used_at__isnull=True).update(
            ack_used_at=now
        )
        if not claimed:
            raise AckLinkUsed("This acknowledge link was already used.")
        alert.state = AlertState.ACKNOWLEDGED
        alert.acknowledged_at = now
        alert.next_escalation_at = None
        alert.save(update_fields=["state", "acknowledged_at", "next_escalation_at"])
        sent_to = delivery.target.name
        AlertEvent.objects.create(
            alert=alert, kind="acknowledged", note=f"by the email link sent to {sent_to}"
        )
        # Who received the link, never the link's token.
        audit_record(
            action="alert.acknowledged",
            obj=alert,
            changes={"state": [AlertState.FIRING, alert.state]},
            metadata={
                "method": "link",
                "sent_to": sent_to,
                "delivery": delivery.pk,
                "firing": alert.firing,
            },
        )
    return alert
