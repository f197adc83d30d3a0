"""The signed token of a one-click acknowledge link: made when a notification is sent (the
email channel) and read when the link is used (services.acknowledge)."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing

from alerts.exceptions import AckLinkExpired, AckLinkInvalid
from alerts.models import Delivery

ACK_SALT = "ledgerguard.alerts.acknowledge"
# What a link names: one notification, its alert and the alert's firing.
ACK_FIELDS = ("alert", "firing", "delivery")


def ack_token(*, delivery: Delivery) -> str:
    """A signed, expiring token naming one notification, its alert and the alert's firing.

    It acknowledges that firing, once: not after the link was used, not after the alert was
    acknowledged and fired again (its firing count moved on), not once it is resolved.
    """
    payload = {"alert": delivery.alert_id, "firing": delivery.alert.firing, "delivery": delivery.pk}
    return signing.dumps(payload, salt=ACK_SALT)


def ack_token_read(token: str) -> dict[str, int]:
    """The ids a genuine, unexpired token names; raises AckLinkGone or AckLinkInvalid."""
    max_age = timedelta(hours=settings.ALERT_ACK_LINK_MAX_AGE_HOURS)
    try:
        data: Any = signing.loads(token, salt=ACK_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise AckLinkExpired("This acknowledge link has expired.") from exc
    except signing.BadSignature as exc:
        raise AckLinkInvalid("This acknowledge link is not valid.") from exc
    if not isinstance(data, dict) or not all(isinstance(data.get(k), int) for k in ACK_FIELDS):
        raise AckLinkInvalid("This acknowledge link is not valid.")  # a link of another version
    return {k: data[k] for k in ACK_FIELDS}
