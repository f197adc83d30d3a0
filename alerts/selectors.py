"""Reads shared by the alert services, views and the apps above (health, checks)."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fnmatch import fnmatchcase
from statistics import median
from typing import Any, Literal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Case, Count, IntegerField, Prefetch, QuerySet, Value, When
from django.db.models.functions import TruncDay, TruncWeek
from django.utils import timezone

from alerts.models import (
    OPEN_STATES,
    SEVERITY_RANK,
    Alert,
    AlertEvent,
    AlertState,
    Delivery,
    EscalationPolicy,
    EscalationStep,
    Heartbeat,
    Route,
    Silence,
    Target,
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


def silence_covers_until(
    *, silences: Iterable[Silence], alert: Alert, now: datetime
) -> datetime | None:
    """The end of the latest of `silences` that covers this alert at `now`, or None (no query:
    the dashboard passes the silences it has already read)."""
    ends = []
    for silence in silences:
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


def silenced_until(*, alert: Alert, now: datetime | None = None) -> datetime | None:
    """The end of the silence that covers this alert now, or None."""
    now = now or timezone.now()
    silences = Silence.objects.filter(starts_at__lte=now, ends_at__gt=now)
    return silence_covers_until(silences=silences, alert=alert, now=now)


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


# --- the Alerts dashboard (alerts/dashboard.py) ----------------------------------------------

# Each alert's timeline on the dashboard: its newest events and deliveries, this many of each.
TIMELINE_LIMIT = 20
# Enough to hold every silence in force at once (the escalation column reads them too).
SILENCE_LIMIT = 50
# Time to acknowledge is a median, computed here (SQLite has no percentile): at most this many.
ACK_SAMPLE_LIMIT = 20_000

_SEVERITY_ORDER = Case(
    *(When(severity=severity, then=Value(rank)) for severity, rank in SEVERITY_RANK.items()),
    default=Value(0),
    output_field=IntegerField(),
)


def _timeline() -> "list[Prefetch[Any, Any, Any]]":  # the stubs make it generic; Django not
    """The newest events and deliveries of each alert, bounded per alert (a window function)."""
    events = AlertEvent.objects.select_related("actor").order_by("-at", "-pk")
    deliveries = Delivery.objects.select_related("target").order_by("-created_at", "-pk")
    return [
        Prefetch("events", queryset=events[:TIMELINE_LIMIT], to_attr="recent_events"),
        Prefetch("deliveries", queryset=deliveries[:TIMELINE_LIMIT], to_attr="recent_deliveries"),
    ]


def alert_list_open(*, state: str, limit: int, timeline: bool = True) -> list[Alert]:
    """Open alerts in one state, the most severe first, then the oldest; with `timeline`, each
    carries `recent_events` and `recent_deliveries` (newest first)."""
    alerts = (
        Alert.objects.filter(state=state)
        .select_related("policy", "acknowledged_by")
        .order_by(_SEVERITY_ORDER.desc(), "first_seen", "pk")
    )
    if timeline:
        alerts = alerts.prefetch_related(*_timeline())
    return list(alerts[:limit])


def alert_resolved_queryset() -> QuerySet[Alert]:
    """Resolved alerts, the newest resolution first, with their timelines (paginate it)."""
    return (
        Alert.objects.filter(state=AlertState.RESOLVED)
        .select_related("acknowledged_by", "resolved_by")
        .prefetch_related(*_timeline())
        .order_by("-resolved_at", "-pk")
    )


def alert_open_counts() -> dict[str, dict[str, int]]:
    """Open alerts counted by state, then severity: {"firing": {"error": 2, ...}, ...}."""
    counts: dict[str, dict[str, int]] = {state: {} for state in OPEN_STATES}
    rows = (
        Alert.objects.filter(state__in=OPEN_STATES)
        .values_list("state", "severity")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for state, severity, n in rows:
        counts[state][severity] = n
    return counts


@dataclass(frozen=True)
class EscalationState:
    """Where a firing, unacknowledged alert stands in its policy (services.escalation moves it):
    `notified` steps done of `steps`; the next step (1-based), its targets and when it is due;
    or held by a silence."""

    policy: str
    steps: int
    notified: int
    next_step: int | None
    next_targets: tuple[str, ...]
    next_at: datetime | None
    repeating: bool
    silenced_until: datetime | None


def escalation_states(
    *, alerts: Sequence[Alert], silences: Sequence[Silence], now: datetime
) -> dict[int, EscalationState]:
    """Each firing alert's escalation state, by alert id (alerts without a policy are left out).
    Two queries: the policies' steps and their active targets."""
    firing = [a for a in alerts if a.state == AlertState.FIRING and a.policy is not None]
    active_targets = Target.objects.filter(is_active=True).order_by("name")
    steps = (
        EscalationStep.objects.filter(policy_id__in={a.policy_id for a in firing})
        .prefetch_related(Prefetch("targets", queryset=active_targets, to_attr="active_targets"))
        .order_by("policy_id", "position")
    )
    by_policy: dict[int, list[EscalationStep]] = {}
    for step in steps if firing else ():
        by_policy.setdefault(step.policy_id, []).append(step)
    states = {}
    for alert in firing:
        assert alert.policy is not None  # filtered above
        policy_steps = by_policy.get(alert.policy.pk, [])
        nxt = alert.step + 1
        repeating = nxt >= len(policy_steps) and alert.policy.repeat_last_step
        if nxt >= len(policy_steps):
            nxt = len(policy_steps) - 1 if repeating and policy_steps else -1
        following = policy_steps[nxt] if nxt >= 0 and alert.next_escalation_at else None
        states[alert.pk] = EscalationState(
            policy=alert.policy.name,
            steps=len(policy_steps),
            notified=min(alert.step + 1, len(policy_steps)),
            next_step=nxt + 1 if following is not None else None,
            next_targets=tuple(t.name for t in getattr(following, "active_targets", ())),
            next_at=alert.next_escalation_at if following is not None else None,
            repeating=repeating,
            silenced_until=silence_covers_until(silences=silences, alert=alert, now=now),
        )
    return states


def silence_list_current(*, now: datetime) -> tuple[list[Silence], list[Silence]]:
    """Silences in force (by validity; a recurring window may be closed right now) and upcoming
    ones (maintenance windows and silences that start later), the soonest first."""
    silences = Silence.objects.select_related("created_by", "approved_by")
    active = silences.filter(starts_at__lte=now, ends_at__gt=now).order_by("ends_at", "pk")
    upcoming = silences.filter(starts_at__gt=now).order_by("starts_at", "pk")
    return list(active[:SILENCE_LIMIT]), list(upcoming[:SILENCE_LIMIT])


def silence_open_now(*, silence: Silence, now: datetime) -> bool:
    """Whether the silence holds notifications at `now` (approved, inside its window)."""
    return _window_end(silence, now) is not None


def alert_raised_counts(
    *, since: datetime, bucket: Literal["day", "week"]
) -> dict[tuple[date, str], int]:
    """Alerts raised since `since`, counted per day (or week) and severity, in the database."""
    trunc = TruncDay("first_seen") if bucket == "day" else TruncWeek("first_seen")
    rows = (
        Alert.objects.filter(first_seen__gte=since)
        .annotate(bucket=trunc)
        .values_list("bucket", "severity")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(_as_date(b), severity): n for b, severity, n in rows}


def alert_ack_minutes_by_week(*, since: datetime) -> dict[date, float]:
    """The median minutes from raised to acknowledged, per week (Monday) of raising."""
    pairs = (
        Alert.objects.filter(first_seen__gte=since, acknowledged_at__isnull=False)
        .order_by("-first_seen")
        .values_list("first_seen", "acknowledged_at")[:ACK_SAMPLE_LIMIT]
    )
    weeks: dict[date, list[float]] = {}
    for raised, acknowledged in pairs:
        assert acknowledged is not None  # filtered above
        day = timezone.localtime(raised).date()
        monday = day - timedelta(days=day.weekday())
        weeks.setdefault(monday, []).append((acknowledged - raised).total_seconds() / 60)
    return {week: median(minutes) for week, minutes in sorted(weeks.items())}


def _as_date(value: datetime | date) -> date:
    return timezone.localtime(value).date() if isinstance(value, datetime) else value
