"""django-q2 jobs of the alerts app: thin, safe to run twice."""

from alerts import services
from alerts.models import Delivery


def escalate_alerts() -> dict[str, int]:
    return {
        "escalated": services.alert_escalate_due(),
        "retried": services.delivery_retry_due(),
        "summaries": services.delivery_summaries_send(),
    }


def send_delivery(delivery_id: int) -> str:
    """Send one delivery again (a dead letter's retry re-arms a failed one)."""
    Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.FAILED).update(
        status=Delivery.Status.PENDING
    )
    result = services.delivery_send(delivery_id=delivery_id)
    if result not in ("sent", "skipped"):
        raise RuntimeError(f"delivery {delivery_id} not sent: {result}")
    return result


def heartbeat() -> str:
    return services.heartbeat_beat()
