"""Error log services: record an error, triage a group, purge old events.

Alerts go through the alert contract (alerts.services), after commit:

    new group           raise_alert(source="errors", key=<fingerprint[:16]>, "New error: ...")
    resolved, again     the same key, "Regression: ..."; the group is unresolved again
    spike               the same key, "Spike: ..." (at most once per spike window per group)
    resolved / ignored  resolve_alert(source="errors", key=...)

An ignored group still counts its events but never alerts.
"""

import logging
import traceback as tb
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from alerts.services import raise_alert, resolve_alert
from audit.services import audit_record, diff, snapshot
from config import context
from config.sanitize import sanitize, sanitize_text
from monitoring.fingerprint import (
    ParsedTraceback,
    exception_type_name,
    fingerprint,
    fingerprint_text,
    parse_traceback_text,
)
from monitoring.models import ErrorEvent, ErrorGroup, ErrorSource, ErrorStatus

logger = logging.getLogger("ledgerguard.monitoring")

ALERT_SOURCE = "errors"
GROUP_MESSAGE_MAX = 1024
EVENT_MESSAGE_MAX = 10_000
TRACEBACK_MAX = 50_000
TITLE_MESSAGE_MAX = 200
TASK_FAILURE_TYPE = "TaskFailed"


def _clip(value: Any, limit: int) -> str:
    return str(value or "")[:limit]


def _user_fields(user: Any) -> tuple[Any, str]:
    """(user to link, its name); anonymous users and unsaved objects are not linked."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None, ""
    name = user.get_username() if hasattr(user, "get_username") else str(user)
    return (user if getattr(user, "pk", None) else None), _clip(name, 150)


# Recording ------------------------------------------------------------------


def error_record(
    *,
    exc: BaseException | None = None,
    source: str,
    request_id: str = "",
    user: Any = None,
    route: str = "",
    method: str = "",
    task_name: str = "",
    operation_name: str = "",
    payload: object = None,
    traceback_text: str = "",
    exc_type: str = "",
    message: str = "",
    event_limit: tuple[int, timedelta] | None = None,
) -> ErrorEvent | None:
    """Store one occurrence of an error and update its group; never raises.

    Pass the live exception as `exc`. Where only text survives (a django-q2 task failure,
    whose result is "<message> : <traceback>"), pass `traceback_text` instead: type, message
    and frames are read from it (`exc_type` and `message` override what is read), and the
    group is the one the live exception would have had.

    Writes in its own transaction; call it after the failed work has rolled back, or the
    record rolls back with it. request_id and user default to the current request context.
    Alerts (new group, regression, spike) are sent on commit. Returns the event, or None when
    recording itself failed (that failure is logged, never raised: this runs on error paths).

    `event_limit` (n, window), for errors anyone can cause at will (CSP reports): once the
    group has n events within the window, further occurrences only count on the group (its
    count and last seen) and store no event; the call then returns None.
    """
    try:
        return _record(
            exc=exc,
            source=source,
            request_id=request_id,
            user=user,
            route=route,
            method=method,
            task_name=task_name,
            operation_name=operation_name,
            payload=payload,
            traceback_text=traceback_text,
            exc_type=exc_type,
            message=message,
            event_limit=event_limit,
        )
    # Called on exception paths: a failure to record must not mask the original error.
    except Exception:
        logger.exception("Could not record an error in the error log")
        return None


def _record(
    *,
    exc: BaseException | None,
    source: str,
    request_id: str,
    user: Any,
    route: str,
    method: str,
    task_name: str,
    operation_name: str,
    payload: object,
    traceback_text: str,
    exc_type: str,
    message: str,
    event_limit: tuple[int, timedelta] | None = None,
) -> ErrorEvent | None:
    digest, culprit, type_name, text, trace = _describe(
        exc=exc, traceback_text=traceback_text, exc_type=exc_type, message=message
    )
    ctx = context.current()
    if ctx is not None:
        request_id = request_id or ctx.request_id
        user = user if user is not None else ctx.user
    linked_user, user_repr = _user_fields(user)
    text = sanitize_text(text, limit=EVENT_MESSAGE_MAX)
    event_fields = {
        "source": source if source in ErrorSource.values else ErrorSource.OTHER,
        "request_id": _clip(request_id, 64),
        "user": linked_user,
        "user_repr": user_repr,
        "route": _clip(route, 255),
        "method": _clip(method, 10),
        "task_name": _clip(task_name, 255),
        "operation_name": _clip(operation_name, 255),
        "payload": sanitize(payload),
        "message": text,
        "traceback": sanitize_text(trace, limit=TRACEBACK_MAX),
    }

    with transaction.atomic():
        now = timezone.now()
        group, created = _group_locked(
            fingerprint=digest,
            exception_type=_clip(type_name, 255),
            culprit=_clip(culprit, 255),
            message=text[:GROUP_MESSAGE_MAX],
            now=now,
        )
        if not created and event_limit is not None and _at_limit(group, now, *event_limit):
            _group_update(group=group, message=text, now=now)
            return None
        event = ErrorEvent.objects.create(group=group, occurred_at=now, **event_fields)
        alert = "new" if created else _group_update(group=group, message=text, now=now)
        if alert is not None:
            # robust: a failing alert is logged, never raised into whoever commits.
            transaction.on_commit(
                lambda: _send_alert(group=group, event=event, kind=alert), robust=True
            )
    return event


def _describe(
    *, exc: BaseException | None, traceback_text: str, exc_type: str, message: str
) -> tuple[str, str, str, str, str]:
    """(fingerprint, culprit, type, message, traceback) of a live exception, or of the text
    of one (its type and message read from the text unless `exc_type`/`message` say)."""
    if exc is not None:
        digest, culprit = fingerprint(exc)
        type_name = exc_type or exception_type_name(exc)
        return digest, culprit, type_name, message or str(exc), "".join(tb.format_exception(exc))
    parsed = parse_traceback_text(traceback_text, default_type=exc_type or TASK_FAILURE_TYPE)
    if exc_type:
        parsed = ParsedTraceback(exc_type, parsed.message, parsed.frames)
    digest, culprit = fingerprint_text(parsed)
    return digest, culprit, parsed.exception_type, message or parsed.message, traceback_text


def _group_locked(
    *, fingerprint: str, exception_type: str, culprit: str, message: str, now: datetime
) -> tuple[ErrorGroup, bool]:
    """The group row for `fingerprint`, locked; created (count 1) if it is new.

    Two first occurrences at once: both miss the row, both insert, the unique fingerprint
    makes the second insert wait for the first and then fail; that one then locks the row
    the first committed (under READ COMMITTED the new statement sees it).
    """
    group = ErrorGroup.objects.select_for_update().filter(fingerprint=fingerprint).first()
    if group is not None:
        return group, False
    try:
        with transaction.atomic():  # a savepoint: the failed insert must not spoil our transaction
            group = ErrorGroup.objects.create(
                fingerprint=fingerprint,
                exception_type=exception_type,
                culprit=culprit,
                message=message,
                first_seen=now,
                last_seen=now,
                count=1,
                last_alerted_at=now,  # its "new error" alert
            )
        return group, True
    except IntegrityError:
        return ErrorGroup.objects.select_for_update().get(fingerprint=fingerprint), False


def _at_limit(group: ErrorGroup, now: datetime, limit: int, window: timedelta) -> bool:
    """The locked group has `limit` events within `window` already (one indexed count)."""
    recent = ErrorEvent.objects.filter(group=group, occurred_at__gte=now - window)
    return recent[:limit].count() >= limit


def _group_update(*, group: ErrorGroup, message: str, now: datetime) -> str | None:
    """Count the event on the locked, existing group; the alert to send, if any."""
    group.count += 1
    group.last_seen = max(group.last_seen, now)
    group.message = message[:GROUP_MESSAGE_MAX]
    fields = ["count", "last_seen", "message"]
    alert = None
    if group.status == ErrorStatus.RESOLVED:
        group.status = ErrorStatus.UNRESOLVED
        group.regressed_at = now
        fields += ["status", "regressed_at"]
        alert = "regression"
    elif group.status == ErrorStatus.UNRESOLVED and _is_spike(group=group, now=now):
        alert = "spike"
    if alert is not None:
        group.last_alerted_at = now
        fields.append("last_alerted_at")
    group.save(update_fields=fields)
    return alert


def _is_spike(*, group: ErrorGroup, now: datetime) -> bool:
    """Recent events reach the minimum and `factor` times the group's usual rate per window.

    The usual rate is the average per window over the baseline hours before the current
    window, counted from the group's first sighting when that is more recent. One aggregate
    query; skipped while the group was alerted within the window.
    """
    window = timedelta(minutes=settings.ERROR_LOG_SPIKE_WINDOW_MINUTES)
    if group.last_alerted_at is not None and group.last_alerted_at > now - window:
        return False
    window_start = now - window
    baseline_start = window_start - timedelta(hours=settings.ERROR_LOG_SPIKE_BASELINE_HOURS)
    counts = ErrorEvent.objects.filter(group=group, occurred_at__gte=baseline_start).aggregate(
        recent=Count("pk", filter=Q(occurred_at__gte=window_start)),
        baseline=Count("pk", filter=Q(occurred_at__lt=window_start)),
    )
    recent, baseline = int(counts["recent"]), int(counts["baseline"])
    if recent < settings.ERROR_LOG_SPIKE_MIN_EVENTS:
        return False
    observed = window_start - max(baseline_start, group.first_seen)
    windows = max(observed / window, 1.0)
    factor: float = settings.ERROR_LOG_SPIKE_FACTOR
    return recent >= factor * baseline / windows


_TITLES = {"new": "New error", "regression": "Regression", "spike": "Spike"}


def _send_alert(*, group: ErrorGroup, event: ErrorEvent, kind: str) -> None:
    message = group.message.splitlines()[0] if group.message else ""
    if len(message) > TITLE_MESSAGE_MAX:
        message = message[:TITLE_MESSAGE_MAX] + "..."
    raise_alert(
        source=ALERT_SOURCE,
        key=group.alert_key,
        severity="error",
        title=f"{_TITLES[kind]}: {group.exception_type}: {message}",
        details={
            "kind": kind,
            "group_id": group.pk,
            "fingerprint": group.fingerprint,
            "exception_type": group.exception_type,
            "culprit": group.culprit,
            "count": group.count,
            "first_seen": group.first_seen.isoformat(),
            "event_id": event.pk,
            "source": event.source,
            "route": event.route,
            "task_name": event.task_name,
            "operation_name": event.operation_name,
            "request_id": event.request_id,
        },
    )


# Triage ---------------------------------------------------------------------


def _resolve_alert_on_commit(group: ErrorGroup) -> None:
    key = group.alert_key
    transaction.on_commit(lambda: resolve_alert(source=ALERT_SOURCE, key=key), robust=True)


def _locked(group: ErrorGroup) -> ErrorGroup:
    return ErrorGroup.objects.select_for_update().get(pk=group.pk)


def _audit_triage(group: ErrorGroup, *, action: str, actor: Any, before: dict[str, Any]) -> None:
    after = snapshot(group, list(before))
    audit_record(
        action=action,
        obj=group,
        actor=actor,
        changes=diff(before, after),
        metadata={"fingerprint": group.fingerprint[:16]},
    )


@transaction.atomic
def error_group_resolve(*, group: ErrorGroup, actor: Any) -> ErrorGroup:
    """Mark fixed; the next occurrence is a regression. Resolves the group's alert."""
    group = _locked(group)
    fields = ["status", "resolved_at", "resolved_by"]
    before = snapshot(group, fields)
    group.status = ErrorStatus.RESOLVED
    group.resolved_at = timezone.now()
    group.resolved_by = actor
    group.save(update_fields=fields)
    _audit_triage(group, action="error_group.resolved", actor=actor, before=before)
    _resolve_alert_on_commit(group)
    return group


@transaction.atomic
def error_group_ignore(*, group: ErrorGroup, actor: Any) -> ErrorGroup:
    """Keep counting, stop alerting. Resolves the group's alert."""
    group = _locked(group)
    before = snapshot(group, ["status"])
    group.status = ErrorStatus.IGNORED
    group.save(update_fields=["status"])
    _audit_triage(group, action="error_group.ignored", actor=actor, before=before)
    _resolve_alert_on_commit(group)
    return group


@transaction.atomic
def error_group_reopen(*, group: ErrorGroup, actor: Any) -> ErrorGroup:
    """Back to unresolved: alerts on spikes again (no alert for the reopening itself)."""
    group = _locked(group)
    before = snapshot(group, ["status"])
    group.status = ErrorStatus.UNRESOLVED
    group.save(update_fields=["status"])
    _audit_triage(group, action="error_group.reopened", actor=actor, before=before)
    return group


# Retention ------------------------------------------------------------------


@transaction.atomic
def error_log_purge(*, now: datetime | None = None) -> int:
    """Delete events past the retention age, and all but each group's newest events.

    Set-based: one delete by age, one aggregate to find the groups over the cap, one delete
    per such group. Groups and their counts stay. Returns the number of events deleted.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.ERROR_LOG_RETENTION_DAYS)
    deleted, _ = ErrorEvent.objects.filter(occurred_at__lt=cutoff).delete()
    cap = settings.ERROR_LOG_MAX_EVENTS_PER_GROUP
    over_cap = (
        ErrorEvent.objects.values("group_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=cap)
        .values_list("group_id", flat=True)
    )
    for group_id in list(over_cap):
        newest = ErrorEvent.objects.filter(group_id=group_id).order_by("-occurred_at", "-pk")
        keep = newest.values("pk")[:cap]
        n, _ = ErrorEvent.objects.filter(group_id=group_id).exclude(pk__in=keep).delete()
        deleted += n
    return deleted
