"""Reads shared by the alert services, views and the apps above (health, checks)."""

from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from alerts.models import (
    SEVERITY_RANK,
    Alert,
    Delivery,
    EscalationPolicy,
    Heartbeat,
    Route,
    Silence,
)


def route_policy(*, source: str, key: str, severity: str) -> EscalationPolicy | None:
    """The policy of the first active route that matches, by position."""
    for route in Route.objects.filter(is_active=True).select_related("policy"):
        if route.source and route.source != source:
            continue
        if not fnmatchcase(key, route.key_pattern or "*"):
            continue
        if SEVERITY_RANK[severity] < SEVERITY_RANK[route.min_severity]:
            continue
        return route.policy
    return None


def _window_end(silence: Silence, now: datetime) -> datetime | None:
    """When the silence stops covering `now`, or None if it does not cover `now`."""
    if not (silence.starts_at <= now < silence.ends_at):
        return None
    if silence.needs_approval and silence.approved_at is None:
        return None
    if not silence.weekdays:
        return silence.ends_at
    local = now.astimezone(ZoneInfo(silence.timezone))
    days = {int(d) for d in silence.weekdays.split(",") if d.strip()}
    start, end = silence.window_start, silence.window_end
    if start is None or end is None:
        return None  # silence_create refuses a recurring silence without both
    for offset in (0, -1):  # a window may have started yesterday and run past midnight
        day = (local + timedelta(days=offset)).date()
        if day.isoweekday() not in days:
            continue
        opens = datetime.combine(day, start, tzinfo=local.tzinfo)
        closes = datetime.combine(
            day if end > start else day + timedelta(days=1), end, tzinfo=local.tzinfo
        )
        if opens <= local < closes:
            return min(closes.astimezone(now.tzinfo), silence.ends_at)
    return None


def silenced_until(*, alert: Alert, now: datetime | None = None) -> datetime | None:
    """The end of the silence that covers this alert now, or None."""
    now = now or timezone.now()
    ends = []
    for silence in Silence.objects.filter(starts_at__lte=now, ends_at__gt=now):
        if silence.source and silence.source != alert.source:
            continue
        if not fnmatchcase(alert.key, silence.key_pattern or "*"):
            continue
        if silence.severity and silence.severity != alert.severity:
            continue
        end = _window_end(silence, now)
        if end is not None:
            ends.append(end)
    return max(ends) if ends else None


def target_window_full(*, target_id: int, now: datetime) -> bool:
    """Whether the target got ALERT_TARGET_MAX_PER_WINDOW notifications in the current window."""
    window = now - timedelta(minutes=settings.ALERT_TARGET_WINDOW_MINUTES)
    sent = Delivery.objects.filter(
        target_id=target_id, status=Delivery.Status.SENT, sent_at__gte=window
    ).count()
    limit: int = settings.ALERT_TARGET_MAX_PER_WINDOW
    return sent >= limit


def heartbeat_status() -> dict[str, Any]:
    """The dead-man switch as an outside monitor and the health checks read it."""
    beat = Heartbeat.objects.filter(name="alerts").first()
    if beat is None:
        return {"ok": False, "last_beat": None, "age_seconds": None}
    age = (timezone.now() - beat.beat_at).total_seconds()
    return {
        "ok": age <= settings.ALERT_HEARTBEAT_MAX_AGE_SECONDS,
        "last_beat": beat.beat_at.isoformat(),
        "age_seconds": round(age, 1),
    }
