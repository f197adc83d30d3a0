"""The alert pipeline's dead-man switch: the scheduler beats every minute (selectors.
heartbeat_status reads it), because a dead scheduler cannot alert about itself."""

from django.conf import settings
from django.utils import timezone

from alerts.models import Heartbeat
from config import outbound


def heartbeat_beat() -> str:
    """Record that the scheduler and a worker are alive, and ping the outside monitor (a GET
    under the outbound rules)."""
    status = "no ALERT_HEARTBEAT_URL set"
    url = settings.ALERT_HEARTBEAT_URL
    if url:
        try:
            answer = outbound.request(url, method="GET", timeout=settings.ALERT_HTTP_TIMEOUT)
            status = f"ping {answer.status}"
        except outbound.OutboundError as exc:
            status = f"ping failed: {exc}"[:200]
    Heartbeat.objects.update_or_create(
        name="alerts", defaults={"beat_at": timezone.now(), "ping_status": status}
    )
    return status
