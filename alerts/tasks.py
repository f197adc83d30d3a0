"""django-q2 jobs of the alerts app: thin, safe to run twice."""

from alerts import services


def escalate_alerts() -> dict[str, int]:
    return {
        "escalated": services.alert_escalate_due(),
        "retried": services.delivery_retry_due(),
        "summaries": services.delivery_summaries_send(),
    }


def send_delivery(delivery_id: int) -> str:
    """The delivery's task: fails (DeliveryExhausted) when the delivery failed for good with no
    fallback, so that its failure path keeps it as a dead letter; the letter's retry runs it
    again, which sends a failed delivery once more (services.delivery.delivery_run)."""
    return services.delivery_run(delivery_id=delivery_id)


def heartbeat() -> str:
    return services.heartbeat_beat()
