"""Silences and maintenance windows: matching alerts are recorded but not delivered while one
is in force (services.escalation asks selectors.silenced_until). Every silence expires; one
that could cover a critical alert needs a second operator's approval."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from alerts.exceptions import SilenceInvalid, SilenceSelfApproval
from alerts.models import Severity, Silence
from audit.services import audit_record, diff, snapshot

SILENCE_AUDITED = (
    "source",
    "key_pattern",
    "severity",
    "starts_at",
    "ends_at",
    "weekdays",
    "window_start",
    "window_end",
    "timezone",
    "reason",
    "needs_approval",
)


def _problems(
    *,
    reason: str,
    starts_at: datetime,
    ends_at: datetime,
    weekdays: str,
    window_start: time | None,
    window_end: time | None,
    timezone_name: str,
) -> dict[str, list[str]]:
    """What is wrong with a silence, by field (empty when it is good)."""
    problems = {}
    if not reason.strip():
        problems["reason"] = ["Say why."]
    if ends_at <= starts_at:
        problems["ends_at"] = ["A silence must end after it starts: every silence expires."]
    try:
        ZoneInfo(timezone_name)
    except (ZoneInfoNotFoundError, ValueError):
        problems["timezone"] = [f"Unknown time zone {timezone_name!r}."]
    if weekdays and (window_start is None or window_end is None):
        problems["window_start"] = ["A recurring window needs a start and an end time."]
    if weekdays and not all(d.strip() in "1234567" and d.strip() for d in weekdays.split(",")):
        problems["weekdays"] = ["ISO weekdays 1 (Monday) to 7 (Sunday), comma-separated."]
    return problems


@transaction.atomic
def silence_create(
    *,
    actor: User,
    reason: str,
    ends_at: datetime,
    starts_at: datetime | None = None,
    source: str = "",
    key_pattern: str = "*",
    severity: str = "",
    weekdays: str = "",
    window_start: time | None = None,
    window_end: time | None = None,
    timezone_name: str = "UTC",
) -> Silence:
    starts_at = starts_at or timezone.now()
    problems = _problems(
        reason=reason,
        starts_at=starts_at,
        ends_at=ends_at,
        weekdays=weekdays,
        window_start=window_start,
        window_end=window_end,
        timezone_name=timezone_name,
    )
    if problems:
        raise SilenceInvalid("The silence is not valid.", fields=problems)
    silence = Silence.objects.create(
        source=source,
        key_pattern=key_pattern or "*",
        severity=severity,
        starts_at=starts_at,
        ends_at=ends_at,
        weekdays=weekdays,
        window_start=window_start,
        window_end=window_end,
        timezone=timezone_name,
        reason=reason,
        created_by=actor,
        # Silencing what could be critical needs a second person.
        needs_approval=severity in ("", Severity.CRITICAL),
    )
    audit_record(
        action="silence.created",
        obj=silence,
        actor=actor,
        changes=diff({}, snapshot(silence, SILENCE_AUDITED)),
    )
    return silence


def silence_approve(*, silence: Silence, actor: User) -> Silence:
    with transaction.atomic():
        silence = Silence.objects.select_for_update().get(pk=silence.pk)
        if actor.pk == silence.created_by_id:
            raise SilenceSelfApproval("A second operator must approve this silence.")
        before = snapshot(silence, ["approved_by", "approved_at"])
        silence.approved_by = actor
        silence.approved_at = timezone.now()
        silence.save(update_fields=["approved_by", "approved_at"])
        audit_record(
            action="silence.approved",
            obj=silence,
            actor=actor,
            changes=diff(before, snapshot(silence, ["approved_by", "approved_at"])),
            metadata={"created_by": silence.created_by_id},
        )
    return silence


def silence_expire(*, silence: Silence, actor: User) -> Silence:
    """End it now (the record stays)."""
    now = timezone.now()
    starts = min(silence.starts_at, now - timedelta(microseconds=1))  # ends after it starts
    with transaction.atomic():
        before = Silence.objects.select_for_update().get(pk=silence.pk)
        ended = Silence.objects.filter(pk=silence.pk, ends_at__gt=now).update(
            starts_at=starts, ends_at=now
        )
        after = Silence.objects.get(pk=silence.pk)
        if ended:  # an already ended silence stays as it was, and nothing is recorded
            fields = ["starts_at", "ends_at"]
            changes = diff(snapshot(before, fields), snapshot(after, fields))
            audit_record(action="silence.expired", obj=after, actor=actor, changes=changes)
    return after
