"""Escalation: due alerts move to their policy's next step, whose targets are notified.

Due alerts are claimed with row locks that skip locked rows, so two workers never take the
same alert; a step's deliveries are unique per target, so a retried job never notifies anyone
twice; due times live in the database, so a restart loses nothing.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from alerts.models import SEVERITY_RANK, Alert, AlertEvent, AlertState, Delivery, EscalationStep
from alerts.selectors import silenced_until
from alerts.services.delivery import delivery_send, summary_items
from audit.services import audit_record


def alert_escalate_due(*, limit: int = 100) -> int:
    """The frequent job: move due alerts to their next step and notify its targets."""
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
            new = _escalate(alert, now)
            if new is not None:
                created += new
                escalated += 1
    for pk in _group(created):
        delivery_send(delivery_id=pk)
    return escalated


def _escalate(alert: Alert, now: datetime) -> list[int] | None:
    """Move one locked, due alert on; the deliveries it made, or None when it did not move
    (silenced, or a policy without steps)."""
    until = silenced_until(alert=alert, now=now)
    if until is not None:
        # Recorded, not delivered; if it still fires when the silence ends, it goes then.
        alert.next_escalation_at = until
        alert.save(update_fields=["next_escalation_at"])
        AlertEvent.objects.create(
            alert=alert, kind="silenced", note=f"held until {until:%Y-%m-%d %H:%M %Z}"
        )
        return None
    steps = list(
        EscalationStep.objects.filter(policy_id=alert.policy_id)
        .prefetch_related("targets")
        .order_by("position")
    )
    if not steps:
        alert.next_escalation_at = None
        alert.save(update_fields=["next_escalation_at"])
        return None
    if alert.step + 1 < len(steps):
        alert.step += 1
    else:
        alert.round += 1  # repeating the last step
    step = steps[alert.step]
    created = []
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
    repeat = alert.policy is not None and alert.policy.repeat_last_step
    if following is not None:
        alert.next_escalation_at = now + timedelta(minutes=following.delay_minutes)
    elif repeat:
        alert.next_escalation_at = now + timedelta(minutes=max(step.delay_minutes, 1))
    else:
        alert.next_escalation_at = None
    alert.save(update_fields=["step", "round", "next_escalation_at"])
    AlertEvent.objects.create(
        alert=alert, kind="escalated_to_step", note=f"step {alert.step} round {alert.round}"
    )
    return created


def _sms_worthy(alert: Alert) -> bool:
    return SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[settings.ALERT_SMS_MIN_SEVERITY]


def _group(delivery_ids: list[int]) -> list[int]:
    """Alerts of one source due for one target in the same run go out as one notification.

    With ALERT_GROUP_WAIT_SECONDS > 0, alerts raised within that wait become due together.
    Returns the deliveries to send: singles as they are, groups as one summary each.
    """
    if not delivery_ids or settings.ALERT_GROUP_WAIT_SECONDS <= 0:
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
            grouped = Delivery.objects.create(
                alert=members[-1].alert,
                target_id=target_id,
                channel=members[-1].channel,
                kind=Delivery.Kind.SUMMARY,
                step=-members[-1].pk,
                items=summary_items(members),
            )
            Delivery.objects.filter(pk__in=[d.pk for d in members]).update(
                status=Delivery.Status.SUMMARISED, response=f"grouped in #{grouped.pk}"
            )
        to_send.append(grouped.pk)
    return to_send


def _ack_timeouts(now: datetime) -> None:
    """Acknowledged alerts left unresolved past their policy's timeout escalate again."""
    acknowledged = Alert.objects.filter(
        state=AlertState.ACKNOWLEDGED, policy__ack_timeout_minutes__isnull=False
    ).select_related("policy")
    for alert in acknowledged:  # few rows: only open, acknowledged alerts with a timeout
        timeout = alert.policy.ack_timeout_minutes if alert.policy else None
        if alert.acknowledged_at is None or timeout is None:
            continue  # the filter above rules both out
        if alert.acknowledged_at + timedelta(minutes=timeout) > now:
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
