"""Read-side queries of the audit trail: the forensics API and the admin pages call these.

Who may read whose events is decided here, once: a user without `audit.view_auditevent` sees
only the events they are the actor of (their own activity), never anyone else's.
"""

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from audit.canonical import HASHED_FIELDS
from audit.models import (
    AuditEvent,
    ChainHead,
    Checkpoint,
    CheckpointPublication,
    Verification,
    VerificationStatus,
)

VIEW_PERMISSION = "audit.view_auditevent"
ACTIVITY_IPS = 100  # the addresses listed in an activity report (most used first)
CHUNK = 5000  # events read per query by event_rows

# How many alerts about the trail are open: the alerts live above this layer, so the side that
# raises them registers the count when it starts (integrity/receivers.py); 0 without one.
_open_alerts_counters: list[Callable[[], int]] = []


def open_alerts_counter_register(counter: Callable[[], int]) -> None:
    """Let `counter` answer the chain status's `open_alerts` (the last one registered wins)."""
    _open_alerts_counters[:] = [counter]


def audit_can_view_all(*, user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_perm(VIEW_PERMISSION))


def audit_event_list(
    *,
    user: Any,
    actor_id: int | None = None,
    actor_repr: str | None = None,
    action: str | None = None,
    action_prefix: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    request_id: str | None = None,
) -> QuerySet[AuditEvent]:
    """The events `user` may read, filtered; `since` inclusive, `until` exclusive.

    Unordered beyond the model's -id: callers paginate by id.
    """
    qs = AuditEvent.objects.all()
    if user is None or not user.is_authenticated:
        return qs.none()
    if not audit_can_view_all(user=user):
        qs = qs.filter(actor_id=user.pk)
    if actor_id is not None:
        qs = qs.filter(actor_id=actor_id)
    if actor_repr:
        qs = qs.filter(actor_repr__icontains=actor_repr)
    if action:
        qs = qs.filter(action=action)
    if action_prefix:
        qs = qs.filter(action__startswith=action_prefix)
    if object_type:
        qs = qs.filter(object_type=object_type)
    if object_id:
        qs = qs.filter(object_id=object_id)
    if since is not None:
        qs = qs.filter(occurred_at__gte=since)
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    if request_id:
        qs = qs.filter(request_id=request_id)
    return qs


def audit_object_timeline(*, object_type: str, object_id: str) -> QuerySet[AuditEvent]:
    """Everything recorded about one object, oldest first (the index audit_object_idx)."""
    return AuditEvent.objects.filter(object_type=object_type, object_id=object_id).order_by("id")


def _username(user_id: int) -> str | None:
    """The user's name, or the one the trail last recorded if the user was deleted."""
    User = get_user_model()
    name = User._default_manager.filter(pk=user_id).values_list(User.USERNAME_FIELD, flat=True)
    found = name.first()
    if found is not None:
        return str(found)
    last = AuditEvent.objects.filter(actor_id=user_id).values_list("actor_repr", flat=True)
    repr_ = last.first()  # "name (#id)", as audit.services.actor_repr writes it
    return repr_.rsplit(" (#", 1)[0] if repr_ else None


def audit_user_activity(
    *, user_id: int, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> dict[str, Any]:
    """What one user did in a time window (`since` inclusive, `until` exclusive): totals,
    counts by action and by day (UTC), the addresses used, failed logins and lockouts under
    their username, denied requests, and when they were first and last seen.

    A fixed number of aggregate queries, whatever the number of events.
    """
    window = Q()
    if since is not None:
        window &= Q(occurred_at__gte=since)
    if until is not None:
        window &= Q(occurred_at__lt=until)
    own = AuditEvent.objects.filter(window, actor_id=user_id).order_by()
    totals = own.aggregate(
        total=Count("id"), first_seen=Min("occurred_at"), last_seen=Max("occurred_at")
    )
    by_action = own.values("action").annotate(count=Count("id")).order_by("action")
    by_day = (
        own.annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
        .values("day")
        .annotate(count=Count("id"))
        .order_by("day")
    )
    addresses = own.exclude(ip=None).values("ip")
    ips = addresses.annotate(
        count=Count("id"), first_seen=Min("occurred_at"), last_seen=Max("occurred_at")
    ).order_by("-count", "ip")[:ACTIVITY_IPS]
    username = _username(user_id)
    # Failed logins have no actor (nobody got in): they name the username that was tried.
    tried = Q(metadata__username=username) if username is not None else Q(pk__in=[])
    failures = AuditEvent.objects.filter(window).filter(
        Q(action="auth.login_failed") & (tried | Q(actor_id=user_id))
    )
    lockouts = AuditEvent.objects.filter(window, tried, action="auth.lockout")
    counted = _counted_repeats(window, username=username, user_id=user_id)
    return {
        "user_id": user_id,
        "username": username,
        "since": since,
        "until": until,
        "total": totals["total"],
        "first_seen": totals["first_seen"],
        "last_seen": totals["last_seen"],
        "by_action": list(by_action),
        "by_day": list(by_day),
        "distinct_ips": addresses.distinct().count(),
        "ips": list(ips),
        "failed_logins": failures.count() + counted["auth.login_failed:password"],
        "lockouts": lockouts.count() + counted["auth.lockout"],
        "access_denials": own.filter(action="access.denied").count() + counted["access.denied"],
    }


def _counted_repeats(window: Q, *, username: str | None, user_id: int) -> dict[str, int]:
    """Repeats only counted in `audit.repeats_summarized` events, for one user, by reason.
    Few such events exist (one per address, reason and window), so they are summed here."""
    names = {
        "access.denied": f"#{user_id}",
        "auth.login_failed:password": username,
        "auth.lockout": username,
    }
    counted = dict.fromkeys(names, 0)
    summaries = AuditEvent.objects.filter(window, action="audit.repeats_summarized")
    for metadata in summaries.values_list("metadata", flat=True).iterator():
        reason, by = metadata.get("reason"), metadata.get("by") or {}
        if reason in names and names[reason] is not None:
            counted[reason] += int(by.get(names[reason], 0))
    return counted


def _as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _as_time(value: Any) -> dt.datetime:
    if isinstance(value, str):  # SQLite keeps UTC times as text without a zone
        value = dt.datetime.fromisoformat(value)
    moment: dt.datetime = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return moment


def event_rows(from_id: int, to_id: int) -> Iterator[dict[str, Any]]:
    """Events `from_id`..`to_id` in id order, read in keyset chunks: constant memory for any
    chain length. Plain SQL, because the ORM's per-row conversions cost more than the hashing."""
    names = (*HASHED_FIELDS, "hash")
    # Fixed column and table names; the values are parameters.
    sql = f"SELECT {', '.join(names)} FROM audit_auditevent WHERE id > %s AND id <= %s "  # noqa: S608
    sql += "ORDER BY id LIMIT %s"
    after = from_id - 1
    with connection.cursor() as cursor:
        while True:
            cursor.execute(sql, [after, to_id, CHUNK])
            chunk = cursor.fetchall()
            if not chunk:
                return
            for values in chunk:
                row = dict(zip(names, values, strict=True))
                row["occurred_at"] = _as_time(row["occurred_at"])
                row["changes"] = _as_json(row["changes"])
                row["metadata"] = _as_json(row["metadata"])
                yield row
            after = chunk[-1][0]


def audit_verify_range_size(*, from_id: int | None = None, to_id: int | None = None) -> int:
    """How many events a verification of `from_id`..`to_id` (default: all) would read."""
    head = ChainHead.objects.filter(pk=1).values_list("sequence", flat=True).first() or 0
    upper = min(to_id, head) if to_id is not None else head
    return max(upper - (from_id or 1) + 1, 0)


def audit_chain_status() -> dict[str, Any]:
    """The chain head, the last verification and checkpoint, and the open audit alerts (as
    the registered counter has them)."""
    head = ChainHead.objects.filter(pk=1).first()
    sequence = head.sequence if head else 0
    last_checkpoint = Checkpoint.objects.order_by("-sequence", "-id").first()
    return {
        "head": {
            "sequence": sequence,
            "hash": head.hash if head else None,
            "occurred_at": head.occurred_at if head else None,
        },
        "last_verification": Verification.objects.order_by("-started_at", "-id").first(),
        "last_checkpoint": last_checkpoint,
        "events_since_checkpoint": sequence - (last_checkpoint.sequence if last_checkpoint else 0),
        "open_alerts": _open_alerts_counters[0]() if _open_alerts_counters else 0,
    }


def verification_list() -> QuerySet[Verification]:
    return Verification.objects.order_by("-id")


def checkpoint_list() -> QuerySet[Checkpoint]:
    return Checkpoint.objects.order_by("-sequence", "-id")


def checkpoint_witness_lag(
    *, channels: dict[str, str], max_age: dt.timedelta
) -> list[dict[str, Any]]:
    """Per witness channel that lags: the oldest checkpoint made more than `max_age` ago that
    neither it nor a newer checkpoint has a copy of at the witness (the chain links every
    event to the ones before, so a witnessed checkpoint vouches for all before it)."""
    cutoff = timezone.now() - max_age
    lagging = []
    for channel, destination in channels.items():
        publications = CheckpointPublication.objects.filter(channel=channel)
        witnessed = publications.filter(status=CheckpointPublication.Status.SENT).aggregate(
            newest=Max("checkpoint__sequence")
        )["newest"]
        overdue = Checkpoint.objects.filter(
            sequence__gt=witnessed or 0, created_at__lte=cutoff
        ).order_by("sequence")
        oldest = overdue.first()
        if oldest is None:
            continue
        last = publications.exclude(last_error="").order_by("-pk").first()
        lagging.append(
            {
                "channel": channel,
                "destination": destination,
                "checkpoint": oldest,
                "count": overdue.count(),
                "newest_witnessed": witnessed,
                "last_error": last.last_error[:500] if last else "",
            }
        )
    return lagging


# The dashboard (audit/dashboard.py) -------------------------------------------------------------


def audit_event_search(
    *,
    user: Any,
    actor: str = "",
    action: str = "",
    object_type: str = "",
    object_id: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The dashboard's search, newest first. `actor` is a username: the user's events by id,
    or, for a user deleted since, the events the trail recorded under that name."""
    qs = audit_event_list(
        user=user,
        action=action or None,
        object_type=object_type or None,
        object_id=object_id or None,
        since=since,
        until=until,
    )
    if actor:
        user_id = (
            get_user_model().objects.filter(username=actor).values_list("pk", flat=True).first()
        )
        if user_id is not None:
            qs = qs.filter(actor_id=user_id)
        else:  # "name (#id)", as audit.services.actor_repr writes it
            qs = qs.filter(actor_repr__startswith=f"{actor} (#")
    return qs.order_by("-id")


def audit_events_per_day(*, since: dt.datetime, until: dt.datetime) -> dict[dt.date, int]:
    """How many events were recorded on each day (UTC) of the window; days without any are
    left out. One grouped query."""
    rows = (
        AuditEvent.objects.filter(occurred_at__gte=since, occurred_at__lt=until)
        .annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
        .values("day")
        .annotate(count=Count("id"))
        .order_by("day")
    )
    return {row["day"]: row["count"] for row in rows}


def audit_events_by_action(
    *, since: dt.datetime, until: dt.datetime, limit: int = 12
) -> list[tuple[str, int]]:
    """The `limit` most recorded actions in the window, with their counts, most first."""
    rows = (
        AuditEvent.objects.filter(occurred_at__gte=since, occurred_at__lt=until)
        .values("action")
        .annotate(count=Count("id"))
        .order_by("-count", "action")[:limit]
    )
    return [(row["action"], row["count"]) for row in rows]


@dataclass(frozen=True)
class ChainOverview:
    """What the dashboard and its Overview tile say about the chain."""

    head_sequence: int
    head_at: dt.datetime | None
    last_verification: Verification | None
    last_full: Verification | None  # the newest verification of the whole chain
    last_full_passed: Verification | None  # the newest one that found it intact
    checkpoints: list[Checkpoint]  # newest first, each annotated with `witnessed_at`
    max_age: dt.timedelta  # AUDIT_VERIFY_MAX_AGE_HOURS, the check audit.verification_recent's

    @property
    def verified_to(self) -> int | None:
        """The last event the newest verification read (None before any)."""
        v = self.last_verification
        if v is None:
            return None
        if v.to_id is not None:
            return min(v.to_id, (v.from_id or 1) + v.events_checked - 1)
        return (v.from_id or 1) + v.events_checked - 1

    @property
    def unverified(self) -> int:
        """Events after the last one the newest verification read (its own audit event, at
        least: recording a verification appends to the chain it has just read)."""
        return max(self.head_sequence - (self.verified_to or 0), 0)

    @property
    def state(self) -> str:
        """ "broken", "stale" (no full verification passed within max_age, or never), "ok",
        or "empty" (no events yet) - as audit.verification_recent judges."""
        if self.last_full is not None and self.last_full.status != VerificationStatus.OK:
            return "broken"
        passed = self.last_full_passed
        if passed is None:
            return "empty" if self.head_sequence == 0 else "stale"
        return "stale" if timezone.now() - passed.started_at > self.max_age else "ok"


def audit_chain_overview(*, checkpoints: int = 5) -> ChainOverview:
    """The chain head, the newest verifications and the last `checkpoints` checkpoints with
    when the witness took their copy: five queries, whatever the size of the trail."""
    head = ChainHead.objects.filter(pk=1).first()
    full = Verification.objects.filter(from_id__isnull=True, to_id__isnull=True)
    sent = Q(publications__status=CheckpointPublication.Status.SENT)
    recent = Checkpoint.objects.annotate(
        witnessed_at=Max("publications__sent_at", filter=sent)
    ).order_by("-sequence", "-id")[:checkpoints]
    return ChainOverview(
        head_sequence=head.sequence if head else 0,
        head_at=head.occurred_at if head else None,
        last_verification=Verification.objects.order_by("-started_at", "-id").first(),
        last_full=full.order_by("-started_at", "-id").first(),
        last_full_passed=full.filter(status=VerificationStatus.OK)
        .order_by("-started_at", "-id")
        .first(),
        checkpoints=list(recent),
        max_age=dt.timedelta(hours=settings.AUDIT_VERIFY_MAX_AGE_HOURS),
    )
