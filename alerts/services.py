"""The alert contract every control reports through (DESIGN.md, "Contracts that the parts share").

    raise_alert(source=, key=, severity=, title=, details=)
    resolve_alert(source=, key=)

An alert is stored once per (source, key) while it is open (firing or acknowledged): repeats
bump its occurrence count and last-seen time instead of making a new alert, so a storm of
reports is one alert. Resolving closes it; the next report opens a new one. Every call is also
written to the `ledgerguard.alerts` log. Delivery (routing, escalation, email, SMS, webhooks)
arrives with the rest of the alerting capability and hangs off these rows.

Both functions are called from failure paths, so they never raise because of the database:
a failure to store is logged and the caller goes on. Call them outside transactions (or from
transaction.on_commit): an alert raised inside a transaction that rolls back is lost with it.
"""

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from alerts.models import (
    OPEN_STATES,
    SEVERITY_RANK,
    Alert,
    AlertEvent,
    AlertState,
    Channel,
    Delivery,
    Severity,
)
from audit.services import audit_record, diff, snapshot
from config import outbound
from config.exceptions import DomainError

logger = logging.getLogger("ledgerguard.alerts")

SEVERITIES = tuple(Severity.values)
_LEVELS = {
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
# Repeats are counted on the alert; the timeline notes them at most this often.
REPEAT_EVENT_EVERY = timedelta(minutes=1)


def raise_alert(
    *, source: str, key: str, severity: str, title: str, details: dict[str, Any] | None = None
) -> Alert | None:
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    details = json.loads(json.dumps(details or {}, default=str))
    logger.log(
        _LEVELS[severity],
        "ALERT %s [%s/%s] %s %s",
        severity.upper(),
        source,
        key,
        title,
        json.dumps(details, sort_keys=True),
        extra={
            "alert": {
                "source": source,
                "key": key,
                "severity": severity,
                "title": title,
                "details": details,
            }
        },
    )
    try:
        return _store(
            source=source, key=key[:255], severity=severity, title=title[:500], details=details
        )
    except DatabaseError:
        logger.exception("Could not store alert %s/%s", source, key)
        return None


def _store(*, source: str, key: str, severity: str, title: str, details: dict) -> Alert:
    now = timezone.now()
    for _ in range(3):
        with transaction.atomic():
            alert = (
                Alert.objects.select_for_update()
                .filter(source=source, key=key, state__in=OPEN_STATES)
                .first()
            )
            if alert is not None:
                return _repeat(alert, severity=severity, title=title, details=details, now=now)
            policy = route_policy(source=source, key=key, severity=severity)
            try:
                with transaction.atomic():  # a concurrent first report may win the insert
                    alert = Alert.objects.create(
                        source=source,
                        key=key,
                        severity=severity,
                        title=title,
                        details=details,
                        last_seen=now,
                        policy=policy,
                        next_escalation_at=(
                            now + timedelta(seconds=_group_wait()) if policy else None
                        ),
                    )
            except IntegrityError:
                continue  # it did: go round and count ours as a repeat of theirs
            AlertEvent.objects.create(alert=alert, kind="raised", note=title)
            # Inside raise_alert's try: a failure here is a DatabaseError like any other.
            audit_record(
                action="alert.opened",
                obj=alert,
                metadata={
                    "source": source,
                    "key": key,
                    "severity": severity,
                    "policy": policy.pk if policy else None,
                },
            )
            if policy is not None:
                # Deliver within seconds, not at the next minute's run of the job.
                transaction.on_commit(_dispatch_soon)
            return alert
    raise DatabaseError(f"could not store alert {source}/{key}")


def _dispatch_soon() -> None:
    """Ask a worker to run the escalation job now (the minute schedule is the safety net)."""
    from django.conf import settings

    if not settings.ALERT_DISPATCH_IMMEDIATELY:
        return
    try:
        from django_q.tasks import async_task

        async_task("alerts.tasks.escalate_alerts", task_name="alerts-dispatch")
    except Exception:  # the minute schedule delivers it anyway
        logger.exception("Could not queue the alert dispatch")


def _repeat(alert: Alert, *, severity: str, title: str, details: dict, now) -> Alert:
    alert.occurrences += 1
    alert.last_seen = now
    alert.title = title
    alert.details = details
    fields = ["occurrences", "last_seen", "title", "details"]
    escalated = SEVERITY_RANK[severity] > SEVERITY_RANK[alert.severity]
    if escalated:  # an open alert never quietly drops to a lower severity
        audit_record(
            action="alert.escalated",
            obj=alert,
            changes={"severity": [alert.severity, severity]},
            metadata={"occurrences": alert.occurrences},
        )
        alert.severity = severity
        fields.append("severity")
    alert.save(update_fields=fields)
    last = alert.events.filter(kind="repeated").order_by("-at").values_list("at", flat=True).first()
    if escalated or last is None or now - last >= REPEAT_EVENT_EVERY:
        AlertEvent.objects.create(
            alert=alert,
            kind="escalated" if escalated else "repeated",
            note=f"occurrence {alert.occurrences}: {title}"[:2000],
        )
    return alert


def resolve_alert(*, source: str, key: str) -> Alert | None:
    try:
        with transaction.atomic():
            alert = (
                Alert.objects.select_for_update()
                .filter(source=source, key=key[:255], state__in=OPEN_STATES)
                .first()
            )
            if alert is None:
                return None
            logger.info(
                "ALERT RESOLVED [%s/%s]",
                source,
                key,
                extra={"alert": {"source": source, "key": key}},
            )
            _audit_resolved(alert, actor=None, by="source", note="")
            return _close(alert, actor=None, note="resolved by its source")
    except DatabaseError:
        logger.exception("Could not resolve alert %s/%s", source, key)
        return None


def _close(alert: Alert, *, actor, note: str, notify: bool = True) -> Alert:
    from alerts.models import Delivery

    alert.state = AlertState.RESOLVED
    alert.resolved_at = timezone.now()
    alert.resolved_by = actor
    alert.next_escalation_at = None
    alert.save(update_fields=["state", "resolved_at", "resolved_by", "next_escalation_at"])
    AlertEvent.objects.create(alert=alert, kind="resolved", actor=actor, note=note)
    if not notify:
        return alert
    # Everyone who was told about it hears that it is over.
    notified = (
        Delivery.objects.filter(alert=alert, kind=Delivery.Kind.NOTIFY, status=Delivery.Status.SENT)
        .values_list("target_id", flat=True)
        .distinct()
    )
    created = []
    for target_id in set(notified):
        delivery, new = Delivery.objects.get_or_create(
            alert=alert,
            target_id=target_id,
            kind=Delivery.Kind.RESOLVED,
            step=0,
            round=0,
            defaults={
                "channel": Delivery.objects.filter(target_id=target_id)
                .values_list("channel", flat=True)
                .first()
            },
        )
        if new:
            created.append(delivery.pk)
    for pk in created:
        transaction.on_commit(lambda pk=pk: delivery_send(delivery_id=pk))
    return alert


def _audit_resolved(alert: Alert, *, actor, by: str, note: str) -> None:
    audit_record(
        action="alert.resolved",
        obj=alert,
        actor=actor,
        changes={"state": [alert.state, AlertState.RESOLVED]},
        metadata={"by": by, "note": note, "occurrences": alert.occurrences},
    )


class AlertNotOpen(DomainError):
    code = "alert.not_open"


@transaction.atomic
def alert_acknowledge(*, alert: Alert, actor) -> Alert:
    """Someone is on it: stops escalation (once escalation exists)."""
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


@transaction.atomic
def alert_resolve(*, alert: Alert, actor, note: str = "") -> Alert:
    """Resolve by hand (the source resolves on its own when the problem clears)."""
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if not alert.is_open:
        raise AlertNotOpen("The alert is already resolved.")
    _audit_resolved(alert, actor=actor, by="user", note=note)
    return _close(alert, actor=actor, note=note or "resolved by hand")


# Routing and escalation -------------------------------------------------------------


def route_policy(*, source: str, key: str, severity: str):
    """The policy of the first active route that matches, by position."""
    from fnmatch import fnmatchcase

    from alerts.models import Route

    for route in Route.objects.filter(is_active=True).select_related("policy"):
        if route.source and route.source != source:
            continue
        if not fnmatchcase(key, route.key_pattern or "*"):
            continue
        if SEVERITY_RANK[severity] < SEVERITY_RANK[route.min_severity]:
            continue
        return route.policy
    return None


def alert_escalate_due(*, limit: int = 100) -> int:
    """The frequent job: move due alerts to their next step and notify its targets.

    Due alerts are claimed with row locks that skip locked rows, so two workers never take
    the same alert; the step's deliveries are unique per target, so a retried job never
    notifies anyone twice; due times live in the database, so a restart loses nothing.
    """
    from alerts.models import Delivery, EscalationStep

    now = timezone.now()
    _ack_timeouts(now)
    escalated = 0
    created: list[int] = []
    with transaction.atomic():
        due = list(
            Alert.objects.select_for_update(skip_locked=True)
            .filter(state=AlertState.FIRING, next_escalation_at__lte=now, policy__isnull=False)
            .order_by("next_escalation_at", "pk")[:limit]
        )
        for alert in due:
            until = silenced_until(alert=alert, now=now)
            if until is not None:
                # Recorded, not delivered; if it still fires when the silence ends, it goes then.
                alert.next_escalation_at = until
                alert.save(update_fields=["next_escalation_at"])
                AlertEvent.objects.create(
                    alert=alert, kind="silenced", note=f"held until {until:%Y-%m-%d %H:%M %Z}"
                )
                continue
            steps = list(
                EscalationStep.objects.filter(policy_id=alert.policy_id)
                .prefetch_related("targets")
                .order_by("position")
            )
            if not steps:
                alert.next_escalation_at = None
                alert.save(update_fields=["next_escalation_at"])
                continue
            if alert.step + 1 < len(steps):
                alert.step += 1
            else:
                alert.round += 1  # repeating the last step
            step = steps[alert.step]
            for target in step.targets.filter(is_active=True):
                if target.channel == "sms" and not _sms_worthy(alert):
                    continue  # SMS is for the most severe alerts only (ALERT_SMS_MIN_SEVERITY)
                delivery, new = Delivery.objects.get_or_create(
                    alert=alert,
                    target=target,
                    kind=Delivery.Kind.NOTIFY,
                    step=alert.step,
                    round=alert.round,
                    defaults={"channel": target.channel},
                )
                if new:
                    created.append(delivery.pk)
            following = steps[alert.step + 1] if alert.step + 1 < len(steps) else None
            if following is not None:
                alert.next_escalation_at = now + timedelta(minutes=following.delay_minutes)
            elif alert.policy.repeat_last_step:
                alert.next_escalation_at = now + timedelta(minutes=max(step.delay_minutes, 1))
            else:
                alert.next_escalation_at = None
            alert.save(update_fields=["step", "round", "next_escalation_at"])
            AlertEvent.objects.create(
                alert=alert, kind="escalated_to_step", note=f"step {alert.step} round {alert.round}"
            )
            escalated += 1
    for pk in _group(created):
        delivery_send(delivery_id=pk)
    return escalated


def _sms_worthy(alert: Alert) -> bool:
    from django.conf import settings

    return SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[settings.ALERT_SMS_MIN_SEVERITY]


def _group_wait() -> int:
    from django.conf import settings

    return settings.ALERT_GROUP_WAIT_SECONDS


def _group(delivery_ids: list[int]) -> list[int]:
    """Alerts of one source due for one target in the same run go out as one notification.

    With ALERT_GROUP_WAIT_SECONDS > 0, alerts raised within that wait become due together.
    Returns the deliveries to send: singles as they are, groups as one summary each.
    """
    from alerts.models import Delivery

    if not delivery_ids or _group_wait() <= 0:
        return delivery_ids  # grouping is off: each alert goes out on its own
    rows = list(Delivery.objects.filter(pk__in=delivery_ids).select_related("alert"))
    groups: dict[tuple[int, str], list[Delivery]] = {}
    for d in rows:
        groups.setdefault((d.target_id, d.alert.source), []).append(d)
    to_send = []
    for (target_id, _source), members in groups.items():
        if len(members) == 1:
            to_send.append(members[0].pk)
            continue
        with transaction.atomic():
            items = [
                {
                    "alert": d.alert_id,
                    "kind": d.kind,
                    "severity": d.alert.severity,
                    "title": d.alert.title,
                }
                for d in members
            ]
            grouped = Delivery.objects.create(
                alert=members[-1].alert,
                target_id=target_id,
                channel=members[-1].channel,
                kind=Delivery.Kind.SUMMARY,
                step=-members[-1].pk,
                items=items,
            )
            Delivery.objects.filter(pk__in=[d.pk for d in members]).update(
                status=Delivery.Status.SUMMARISED, response=f"grouped in #{grouped.pk}"
            )
        to_send.append(grouped.pk)
    return to_send


def _ack_timeouts(now) -> None:
    """Acknowledged alerts left unresolved past their policy's timeout escalate again."""
    acknowledged = Alert.objects.filter(
        state=AlertState.ACKNOWLEDGED, policy__ack_timeout_minutes__isnull=False
    ).select_related("policy")
    for alert in acknowledged:  # few rows: only open, acknowledged alerts with a timeout
        if alert.acknowledged_at + timedelta(minutes=alert.policy.ack_timeout_minutes) > now:
            continue
        with transaction.atomic():
            # A new firing: links sent for the one that was acknowledged stop working.
            claimed = Alert.objects.filter(pk=alert.pk, state=AlertState.ACKNOWLEDGED).update(
                state=AlertState.FIRING, next_escalation_at=now, firing=F("firing") + 1
            )
            if claimed:
                AlertEvent.objects.create(
                    alert=alert, kind="ack_timeout", note="not resolved in time: escalating again"
                )
                audit_record(
                    action="alert.ack_expired",
                    obj=alert,
                    changes={"state": [AlertState.ACKNOWLEDGED, AlertState.FIRING]},
                    metadata={"acknowledged_by": alert.acknowledged_by_id},
                )


def delivery_send(*, delivery_id: int, final: bool = False) -> str:
    """Send one delivery; claimed with a conditional update so it is sent at most once.

    `final`: one attempt only, no retry, fallback or dead letter (send_test_alert).
    """
    from alerts import channels
    from alerts.models import Delivery

    now = timezone.now()
    if not final and _over_rate_limit(delivery_id, now):
        held = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING).update(
            status=Delivery.Status.HELD
        )
        if held:
            d = Delivery.objects.select_related("alert", "target").get(pk=delivery_id)
            AlertEvent.objects.create(
                alert=d.alert, kind="held", note=f"{d.target}: rate limit; goes in a summary"
            )
        return "held"
    claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.SENDING, attempts=F("attempts") + 1, next_attempt_at=None
    )
    if not claimed:
        return "skipped"
    delivery = Delivery.objects.select_related("alert", "target").get(pk=delivery_id)
    try:
        response = channels.send(delivery)
    except channels.DeliveryError as exc:
        if final:
            Delivery.objects.filter(pk=delivery.pk).update(
                status=Delivery.Status.FAILED, last_error=str(exc)[:2000]
            )
            return f"failed: {exc}"
        return _delivery_failed(delivery, exc)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.SENT, sent_at=now, response=response[:2000], last_error=""
    )
    AlertEvent.objects.create(
        alert=delivery.alert,
        kind=f"{delivery.kind}_sent",
        note=f"{delivery.target} via {delivery.channel}",
    )
    return "sent"


def _over_rate_limit(delivery_id: int, now) -> bool:
    """A target gets at most ALERT_TARGET_MAX_PER_WINDOW notifications per window."""
    from django.conf import settings

    from alerts.models import Delivery

    delivery = Delivery.objects.filter(pk=delivery_id).values("target_id", "kind").first()
    if delivery is None or delivery["kind"] == Delivery.Kind.SUMMARY:
        return False
    window = now - timedelta(minutes=settings.ALERT_TARGET_WINDOW_MINUTES)
    sent = Delivery.objects.filter(
        target_id=delivery["target_id"], status=Delivery.Status.SENT, sent_at__gte=window
    ).count()
    return sent >= settings.ALERT_TARGET_MAX_PER_WINDOW


def delivery_summaries_send() -> int:
    """Held notifications are summarised, not lost: once a target's window has room again,
    it gets one message listing everything held back for it."""
    from django.conf import settings

    from alerts.models import Delivery

    now = timezone.now()
    sent = 0
    targets = (
        Delivery.objects.filter(status=Delivery.Status.HELD)
        .values_list("target_id", flat=True)
        .distinct()
    )
    for target_id in set(targets):
        window = now - timedelta(minutes=settings.ALERT_TARGET_WINDOW_MINUTES)
        recent = Delivery.objects.filter(
            target_id=target_id, status=Delivery.Status.SENT, sent_at__gte=window
        ).count()
        if recent >= settings.ALERT_TARGET_MAX_PER_WINDOW:
            continue  # still inside a full window
        with transaction.atomic():
            held = list(
                Delivery.objects.select_for_update(skip_locked=True)
                .filter(target_id=target_id, status=Delivery.Status.HELD)
                .select_related("alert")
                .order_by("pk")
            )
            if not held:
                continue
            items = [
                {
                    "alert": d.alert_id,
                    "kind": d.kind,
                    "severity": d.alert.severity,
                    "title": d.alert.title,
                }
                for d in held
            ]
            summary = Delivery.objects.create(
                alert=held[-1].alert,
                target_id=target_id,
                channel=held[-1].channel,
                kind=Delivery.Kind.SUMMARY,
                step=held[-1].pk,
                items=items,
            )
            Delivery.objects.filter(pk__in=[d.pk for d in held]).update(
                status=Delivery.Status.SUMMARISED, response=f"in summary #{summary.pk}"
            )
        transaction.on_commit(lambda pk=summary.pk: delivery_send(delivery_id=pk))
        sent += 1
    return sent


def _delivery_failed(delivery, exc) -> str:
    from django.conf import settings

    from alerts.models import Delivery

    attempts = delivery.attempts
    exhausted = exc.permanent or attempts >= settings.ALERT_DELIVERY_MAX_ATTEMPTS
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.FAILED if exhausted else Delivery.Status.PENDING,
        last_error=str(exc)[:2000],
        next_attempt_at=None
        if exhausted
        else now + timedelta(seconds=settings.ALERT_DELIVERY_RETRY_SECONDS * 2 ** (attempts - 1)),
    )
    AlertEvent.objects.create(
        alert=delivery.alert,
        kind="delivery_failed",
        note=f"{delivery.target} via {delivery.channel}, attempt {attempts}: {exc}"[:2000],
    )
    if exhausted:
        fallback = delivery.target.fallback
        if fallback is not None and fallback.is_active:
            new, created = Delivery.objects.get_or_create(
                alert=delivery.alert,
                target=fallback,
                kind=delivery.kind,
                step=delivery.step,
                round=delivery.round,
                defaults={"channel": fallback.channel},
            )
            if created:
                delivery_send(delivery_id=new.pk)
        else:
            from integrity.services import deadletter_create

            deadletter_create(
                operation="alerts.tasks.send_delivery",
                kind="task",
                payload={"args": [delivery.pk], "kwargs": {}},
                error=str(exc),
            )
    return "failed" if exhausted else "retry"


def delivery_retry_due(*, limit: int = 100) -> int:
    from alerts.models import Delivery

    due = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in due:
        delivery_send(delivery_id=pk)
    return len(due)


def target_check(*, channel: str, address: str) -> None:
    """Refuse a webhook target whose URL breaks the outbound rules (config/outbound.py): a
    400 with the rule's code (`outbound.scheme_not_allowed`, ...) on the field `address`.

    A host that does not resolve right now passes: every delivery checks the URL again.
    """
    if channel != Channel.WEBHOOK:
        return
    try:
        outbound.check_url(address)
    except outbound.HostUnresolvable:
        return
    except outbound.URLRefused as exc:
        fields = {"address": [exc.message]}
        raise DomainError(exc.message, code=exc.code, fields=fields, http_status=400) from exc


def alert_send_test(*, channel: str | None = None, to: str | None = None) -> list[tuple[str, str]]:
    """Deliver a test alert now, to `to` or to the default route's first-step targets.

    Returns (target, outcome) pairs; outcome is "sent: ..." or "failed: ...".
    """
    import uuid

    from alerts.models import Delivery, EscalationStep, Target

    if to:
        guessed = (
            Channel.EMAIL
            if "@" in to
            else Channel.WEBHOOK
            if to.startswith("http")
            else Channel.SMS
        )
        target_check(channel=channel or guessed, address=to)
        target, _ = Target.objects.update_or_create(
            name=f"test: {to}"[:100],
            defaults={"channel": channel or guessed, "address": to, "is_active": False},
        )
        targets = [target]
    else:
        policy = route_policy(source="test", key="send_test_alert", severity="critical")
        step = (
            EscalationStep.objects.filter(policy=policy)
            .order_by("position")
            .prefetch_related("targets")
            .first()
            if policy
            else None
        )
        targets = [t for t in (step.targets.all() if step else []) if t.is_active]
        if channel:
            targets = [t for t in targets if t.channel == channel]
    now = timezone.now()
    alert = Alert.objects.create(
        source="test",
        key=f"send_test_alert-{uuid.uuid4().hex[:8]}",
        severity="info",
        title="Ledgerguard test alert: delivery works",
        last_seen=now,
        details={"sent_by": "manage.py send_test_alert"},
    )
    AlertEvent.objects.create(alert=alert, kind="raised", note="send_test_alert")
    results = []
    for target in targets:
        delivery = Delivery.objects.create(alert=alert, target=target, channel=target.channel)
        outcome = delivery_send(delivery_id=delivery.pk, final=True)
        if outcome == "sent":
            outcome = "sent: " + Delivery.objects.get(pk=delivery.pk).response
        results.append((f"{target.channel} {target.address}", outcome))
    _close(alert, actor=None, note="test finished", notify=False)
    audit_record(
        action="alert.test_sent",
        obj=alert,
        metadata={
            "channel": channel or "",
            "to": to or "",
            "results": [f"{t}: {o}"[:300] for t, o in results],
        },
    )
    return results


ACK_SALT = "ledgerguard.alerts.acknowledge"


class AckLinkInvalid(DomainError):
    code = "alert.link_invalid"
    http_status = 404


class AckLinkGone(DomainError):
    """A genuine link that no longer acknowledges anything (`alert.link_expired`,
    `alert.link_used`, `alert.link_superseded`)."""

    code = "alert.link_gone"
    http_status = 410


def ack_token(*, delivery) -> str:
    """A signed, expiring token naming one notification, its alert and the alert's firing.

    It acknowledges that firing, once: not after the link was used, not after the alert was
    acknowledged and fired again (its firing count moved on), not once it is resolved.
    """
    payload = {"alert": delivery.alert_id, "firing": delivery.alert.firing, "delivery": delivery.pk}
    return signing.dumps(payload, salt=ACK_SALT)


def _ack_link(token: str, *, lock: bool):
    """The delivery and alert a link names, as the link sees them; raises when it is not good
    (changing nothing). `lock`: lock the alert row (the caller holds a transaction)."""
    try:
        data = signing.loads(
            token, salt=ACK_SALT, max_age=timedelta(hours=settings.ALERT_ACK_LINK_MAX_AGE_HOURS)
        )
    except signing.SignatureExpired as exc:
        raise AckLinkGone("This acknowledge link has expired.", code="alert.link_expired") from exc
    except signing.BadSignature as exc:
        raise AckLinkInvalid("This acknowledge link is not valid.") from exc
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), int) for k in ("alert", "firing", "delivery")
    ):
        raise AckLinkInvalid("This acknowledge link is not valid.")  # a link of another version
    # The alert first: a second click waits here, then reads the link as the first left it.
    alerts = Alert.objects.select_for_update() if lock else Alert.objects
    alert = alerts.filter(pk=data["alert"]).first()
    notifications = Delivery.objects.filter(kind=Delivery.Kind.NOTIFY).select_related("target")
    delivery = notifications.filter(pk=data["delivery"], alert_id=data["alert"]).first()
    if alert is None or delivery is None:
        raise AckLinkInvalid("This acknowledge link is not valid.")
    if delivery.ack_used_at is not None:
        raise AckLinkGone("This acknowledge link was already used.", code="alert.link_used")
    if alert.firing != data["firing"]:
        raise AckLinkGone(
            "This acknowledge link is no longer valid: the alert was acknowledged and has fired "
            "again since; use the link in the newest notification.",
            code="alert.link_superseded",
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
            raise AckLinkGone("This acknowledge link was already used.", code="alert.link_used")
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


# Silences ---------------------------------------------------------------------------

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


@transaction.atomic
def silence_create(
    *,
    actor,
    reason: str,
    ends_at,
    starts_at=None,
    source: str = "",
    key_pattern: str = "*",
    severity: str = "",
    weekdays: str = "",
    window_start=None,
    window_end=None,
    timezone_name: str = "UTC",
):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from alerts.models import Silence

    starts_at = starts_at or timezone.now()
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
    if problems:
        raise DomainError("The silence is not valid.", code="silence.invalid", fields=problems)
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


def silence_approve(*, silence, actor):
    from alerts.models import Silence

    with transaction.atomic():
        silence = Silence.objects.select_for_update().get(pk=silence.pk)
        if actor.pk == silence.created_by_id:
            raise DomainError(
                "A second operator must approve this silence.", code="silence.self_approval"
            )
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


def silence_expire(*, silence, actor):
    """End it now (the record stays)."""
    from alerts.models import Silence

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


def _window_end(silence, now):
    """When the silence stops covering `now`, or None if it does not cover `now`."""
    from zoneinfo import ZoneInfo

    if not (silence.starts_at <= now < silence.ends_at):
        return None
    if silence.needs_approval and silence.approved_at is None:
        return None
    if not silence.weekdays:
        return silence.ends_at
    local = now.astimezone(ZoneInfo(silence.timezone))
    days = {int(d) for d in silence.weekdays.split(",") if d.strip()}
    start, end = silence.window_start, silence.window_end
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


def silenced_until(*, alert: Alert, now=None):
    """The end of the silence that covers this alert now, or None."""
    from fnmatch import fnmatchcase

    from alerts.models import Silence

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


# Dead-man switch ----------------------------------------------------------------------


def heartbeat_beat() -> str:
    """Record that the scheduler and a worker are alive, and ping the outside monitor (a GET
    under the outbound rules)."""
    from django.conf import settings

    from alerts.models import Heartbeat

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


def heartbeat_status() -> dict[str, Any]:
    from django.conf import settings

    from alerts.models import Heartbeat

    beat = Heartbeat.objects.filter(name="alerts").first()
    if beat is None:
        return {"ok": False, "last_beat": None, "age_seconds": None}
    age = (timezone.now() - beat.beat_at).total_seconds()
    return {
        "ok": age <= settings.ALERT_HEARTBEAT_MAX_AGE_SECONDS,
        "last_beat": beat.beat_at.isoformat(),
        "age_seconds": round(age, 1),
    }
