"""The alert contract every control reports through (DESIGN.md, "Contracts that the parts share").

    raise_alert(source=, key=, severity=, title=, details=)
    resolve_alert(source=, key=)

An alert is stored once per (source, key) while it is open (firing or acknowledged): repeats
bump its occurrence count and last-seen time instead of making a new alert, so a storm of
reports is one alert. Resolving closes it; the next report opens a new one. Every call is also
written to the `ledgerguard.alerts` log. Routing, escalation and delivery hang off these rows.

Both functions are called from failure paths, so they never raise because of the database:
a failure to store is logged and the caller goes on. Call them outside transactions (or from
transaction.on_commit): an alert raised inside a transaction that rolls back is lost with it.
"""

import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from django_q.tasks import async_task

from alerts.exceptions import AlertNotOpen
from alerts.models import (
    OPEN_STATES,
    SEVERITY_RANK,
    Alert,
    AlertEvent,
    AlertState,
    Channel,
    Delivery,
    EscalationStep,
    Severity,
    Target,
)
from alerts.selectors import route_policy
from alerts.services.delivery import delivery_send, resolution_notify, target_check
from audit.services import audit_record

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


def _store(*, source: str, key: str, severity: str, title: str, details: dict[str, Any]) -> Alert:
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
            wait = timedelta(seconds=settings.ALERT_GROUP_WAIT_SECONDS)
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
                        next_escalation_at=now + wait if policy else None,
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
    if not settings.ALERT_DISPATCH_IMMEDIATELY:
        return
    try:
        async_task("alerts.tasks.escalate_alerts", task_name="alerts-dispatch")
    except Exception:  # the minute schedule delivers it anyway
        logger.exception("Could not queue the alert dispatch")


def _repeat(
    alert: Alert, *, severity: str, title: str, details: dict[str, Any], now: datetime
) -> Alert:
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


@transaction.atomic
def alert_resolve(*, alert: Alert, actor: User | None, note: str = "") -> Alert:
    """Resolve by hand (the source resolves on its own when the problem clears)."""
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if not alert.is_open:
        raise AlertNotOpen("The alert is already resolved.")
    _audit_resolved(alert, actor=actor, by="user", note=note)
    return _close(alert, actor=actor, note=note or "resolved by hand")


def _close(alert: Alert, *, actor: User | None, note: str, notify: bool = True) -> Alert:
    alert.state = AlertState.RESOLVED
    alert.resolved_at = timezone.now()
    alert.resolved_by = actor
    alert.next_escalation_at = None
    alert.save(update_fields=["state", "resolved_at", "resolved_by", "next_escalation_at"])
    AlertEvent.objects.create(alert=alert, kind="resolved", actor=actor, note=note)
    if notify:
        resolution_notify(alert=alert)
    return alert


def _audit_resolved(alert: Alert, *, actor: User | None, by: str, note: str) -> None:
    audit_record(
        action="alert.resolved",
        obj=alert,
        actor=actor,
        changes={"state": [alert.state, AlertState.RESOLVED]},
        metadata={"by": by, "note": note, "occurrences": alert.occurrences},
    )


def alert_send_test(*, channel: str | None = None, to: str | None = None) -> list[tuple[str, str]]:
    """Deliver a test alert now, to `to` or to the default route's first-step targets.

    The test alert goes the contract's way (opened, delivered, closed) without escalation:
    one attempt per target, no retry, fallback or dead letter.
    Returns (target, outcome) pairs; outcome is "sent: ..." or "failed: ...".
    """
    targets = _test_targets(channel=channel, to=to)
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


def _test_targets(*, channel: str | None, to: str | None) -> list[Target]:
    """`to` as an inactive target of its own (refused when the outbound rules refuse it), or
    the active targets of the first step of the route a critical test alert would take."""
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
        return [target]
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
    return targets
