"""Deliveries: one notification to one target, sent at most once, retried with backoff, handed
to the target's fallback when it fails for good.

A delivery that fails for good with no fallback fails its task, `alerts.tasks.send_delivery`,
and the task's failure path keeps it as a dead letter (integrity listens to django-q2's
post_execute); the letter's retry runs the task again, which sends it once more. Most sends
happen outside that task (the escalation job, a resolution, a summary): then the task is
queued to fail for the delivery, reporting its failure without sending it again.
"""

import logging
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_q.tasks import async_task

from alerts import channels
from alerts.exceptions import DeliveryError, DeliveryExhausted
from alerts.models import Alert, AlertEvent, Channel, Delivery
from alerts.selectors import target_window_full
from config import outbound
from config.errors import DomainError

logger = logging.getLogger("ledgerguard.alerts")

S = Delivery.Status
# The task a failed delivery's dead letter names; its retry runs it again: keep the path.
REPORT_TASK = "alerts.tasks.send_delivery"
# The name of a task queued to report a failure.
REPORT_TASK_PREFIX = "alerts-delivery-failed-"
SENT, HELD, SKIPPED, RETRY, FAILED = "sent", "held", "skipped", "retry", "failed"
EXHAUSTED = "exhausted"  # failed for good, no fallback: its task must fail for it


def delivery_send(*, delivery_id: int, final: bool = False) -> str:
    """Send one delivery now; claimed with a conditional update so it is sent at most once.

    Returns "sent", "held" (the target's rate limit: it goes in a summary), "skipped" (not
    pending: sent, or someone else has it), "retry" (failed; retried with backoff) or "failed"
    (failed for good: the target's fallback has it, or its task is queued to fail for it).
    `final`: one attempt only, no retry, fallback or dead letter (send_test_alert); a failure
    returns "failed: <error>".
    """
    outcome = _attempt(delivery_id, final=final)
    if outcome == EXHAUSTED:
        transaction.on_commit(partial(_report_queue, delivery_id))
        return FAILED
    return outcome


def delivery_run(*, delivery_id: int) -> str:
    """What the delivery's task does (`alerts.tasks.send_delivery`); safe to run twice.

    A failure recorded outside the task is reported, not sent again: DeliveryExhausted.
    Otherwise a failed delivery is re-armed (a dead letter's retry) and sent: DeliveryExhausted
    when it fails for good again, DeliveryError when it is held back or to be retried.
    """
    _report(delivery_id)
    Delivery.objects.filter(pk=delivery_id, status=S.FAILED).update(status=S.PENDING)
    outcome = _attempt(delivery_id, final=False)
    if outcome == EXHAUSTED:
        _report(delivery_id)
    if outcome not in (SENT, SKIPPED):
        raise DeliveryError(f"delivery {delivery_id} not sent: {outcome}")
    return outcome


def _report(delivery_id: int) -> None:
    """Raise DeliveryExhausted for a failure not reported yet (claimed once, by a conditional
    update that commits before the task fails)."""
    if Delivery.objects.filter(pk=delivery_id, report_pending=True).update(report_pending=False):
        delivery = Delivery.objects.select_related("target").get(pk=delivery_id)
        raise DeliveryExhausted(
            f"delivery {delivery_id} to {delivery.target} failed for good after "
            f"{delivery.attempts} attempt(s): {delivery.last_error}"
        )


def _report_queue(delivery_id: int) -> None:
    """Queue the delivery's task to fail for it. ack_failure: django-q2 never presents it again,
    so its one failure is final and integrity's task-failure path dead-letters it."""
    async_task(
        REPORT_TASK,
        delivery_id,
        task_name=f"{REPORT_TASK_PREFIX}{delivery_id}",
        ack_failure=True,
    )


def _attempt(delivery_id: int, *, final: bool) -> str:
    """One attempt: held back, skipped, sent, or failed (see _failed)."""
    now = timezone.now()
    if not final and _over_rate_limit(delivery_id, now):
        return _hold(delivery_id)
    claimed = Delivery.objects.filter(pk=delivery_id, status=S.PENDING).update(
        status=S.SENDING, attempts=F("attempts") + 1, next_attempt_at=None
    )
    if not claimed:
        return SKIPPED
    delivery = Delivery.objects.select_related("alert", "target").get(pk=delivery_id)
    try:
        response = channels.send(delivery)
    except DeliveryError as exc:
        if final:
            Delivery.objects.filter(pk=delivery.pk).update(
                status=S.FAILED, last_error=str(exc)[:2000]
            )
            return f"failed: {exc}"
        return _failed(delivery, exc)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=S.SENT, sent_at=now, response=response[:2000], last_error=""
    )
    AlertEvent.objects.create(
        alert=delivery.alert,
        kind=f"{delivery.kind}_sent",
        note=f"{delivery.target} via {delivery.channel}",
    )
    return SENT


def _over_rate_limit(delivery_id: int, now: datetime) -> bool:
    """A target gets at most ALERT_TARGET_MAX_PER_WINDOW notifications per window."""
    delivery = Delivery.objects.filter(pk=delivery_id).values("target_id", "kind").first()
    if delivery is None or delivery["kind"] == Delivery.Kind.SUMMARY:
        return False
    return target_window_full(target_id=delivery["target_id"], now=now)


def _hold(delivery_id: int) -> str:
    held = Delivery.objects.filter(pk=delivery_id, status=S.PENDING).update(status=S.HELD)
    if held:
        d = Delivery.objects.select_related("alert", "target").get(pk=delivery_id)
        AlertEvent.objects.create(
            alert=d.alert, kind="held", note=f"{d.target}: rate limit; goes in a summary"
        )
    return HELD


def _failed(delivery: Delivery, exc: DeliveryError) -> str:
    """Retry with backoff; once exhausted, the target's fallback gets it, or its task must
    fail for it ("exhausted")."""
    attempts = delivery.attempts
    exhausted = exc.permanent or attempts >= settings.ALERT_DELIVERY_MAX_ATTEMPTS
    fallback = delivery.target.fallback if exhausted else None
    if fallback is not None and not fallback.is_active:
        fallback = None
    backoff = timedelta(seconds=settings.ALERT_DELIVERY_RETRY_SECONDS * 2 ** (attempts - 1))
    Delivery.objects.filter(pk=delivery.pk).update(
        status=S.FAILED if exhausted else S.PENDING,
        last_error=str(exc)[:2000],
        next_attempt_at=None if exhausted else timezone.now() + backoff,
        report_pending=exhausted and fallback is None,
    )
    AlertEvent.objects.create(
        alert=delivery.alert,
        kind="delivery_failed",
        note=f"{delivery.target} via {delivery.channel}, attempt {attempts}: {exc}"[:2000],
    )
    if not exhausted:
        return RETRY
    if fallback is None:
        return EXHAUSTED
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
    return FAILED


def delivery_retry_due(*, limit: int = 100) -> int:
    """Send again the deliveries whose backoff is over."""
    due = list(
        Delivery.objects.filter(status=S.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in due:
        delivery_send(delivery_id=pk)
    return len(due)


def delivery_summaries_send() -> int:
    """Held notifications are summarised, not lost: once a target's window has room again,
    it gets one message listing everything held back for it."""
    now = timezone.now()
    targets = Delivery.objects.filter(status=S.HELD).values_list("target_id", flat=True).distinct()
    sent = 0
    for target_id in set(targets):
        if target_window_full(target_id=target_id, now=now):
            continue  # still inside a full window
        summary = _summarise_held(target_id)
        if summary is not None:
            transaction.on_commit(partial(_send_quietly, summary))
            sent += 1
    return sent


def _summarise_held(target_id: int) -> int | None:
    """One summary delivery for what is held for the target (claimed with skip_locked)."""
    with transaction.atomic():
        held = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(target_id=target_id, status=S.HELD)
            .select_related("alert")
            .order_by("pk")
        )
        if not held:
            return None
        summary = Delivery.objects.create(
            alert=held[-1].alert,
            target_id=target_id,
            channel=held[-1].channel,
            kind=Delivery.Kind.SUMMARY,
            step=held[-1].pk,
            items=summary_items(held),
        )
        Delivery.objects.filter(pk__in=[d.pk for d in held]).update(
            status=S.SUMMARISED, response=f"in summary #{summary.pk}"
        )
    return summary.pk


def summary_items(deliveries: list[Delivery]) -> list[dict[str, object]]:
    """What a summary lists of each delivery it stands for."""
    return [
        {"alert": d.alert_id, "kind": d.kind, "severity": d.alert.severity, "title": d.alert.title}
        for d in deliveries
    ]


def resolution_notify(*, alert: Alert) -> None:
    """Everyone who was told about the alert hears that it is over (after commit)."""
    notified = (
        Delivery.objects.filter(alert=alert, kind=Delivery.Kind.NOTIFY, status=S.SENT)
        .values_list("target_id", flat=True)
        .distinct()
    )
    for target_id in set(notified):
        # The channel of the target's first delivery (it has one: it was notified).
        channel = Delivery.objects.filter(target_id=target_id).values_list("channel", flat=True)[0]
        delivery, new = Delivery.objects.get_or_create(
            alert=alert,
            target_id=target_id,
            kind=Delivery.Kind.RESOLVED,
            step=0,
            round=0,
            defaults={"channel": channel},
        )
        if new:
            transaction.on_commit(partial(_send_quietly, delivery.pk))


def _send_quietly(delivery_id: int) -> None:
    """delivery_send as an on_commit callback (its outcome is on the row)."""
    delivery_send(delivery_id=delivery_id)


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
