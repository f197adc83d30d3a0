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
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from alerts.models import OPEN_STATES, SEVERITY_RANK, Alert, AlertEvent, AlertState, Severity
from config.exceptions import DomainError

logger = logging.getLogger("ledgerguard.alerts")

SEVERITIES = tuple(Severity.values)
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
           "critical": logging.CRITICAL}  # fmt: skip
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
        return _store(source=source, key=key[:255], severity=severity, title=title[:500],
                      details=details)  # fmt: skip
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
            try:
                with transaction.atomic():  # a concurrent first report may win the insert
                    alert = Alert.objects.create(
                        source=source, key=key, severity=severity, title=title,
                        details=details, last_seen=now,
                    )  # fmt: skip
            except IntegrityError:
                continue  # it did: go round and count ours as a repeat of theirs
            AlertEvent.objects.create(alert=alert, kind="raised", note=title)
            return alert
    raise DatabaseError(f"could not store alert {source}/{key}")


def _repeat(alert: Alert, *, severity: str, title: str, details: dict, now) -> Alert:
    alert.occurrences += 1
    alert.last_seen = now
    alert.title = title
    alert.details = details
    fields = ["occurrences", "last_seen", "title", "details"]
    escalated = SEVERITY_RANK[severity] > SEVERITY_RANK[alert.severity]
    if escalated:  # an open alert never quietly drops to a lower severity
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
    logger.info(
        "ALERT RESOLVED [%s/%s]", source, key, extra={"alert": {"source": source, "key": key}}
    )
    try:
        with transaction.atomic():
            alert = (
                Alert.objects.select_for_update()
                .filter(source=source, key=key[:255], state__in=OPEN_STATES)
                .first()
            )
            if alert is None:
                return None
            return _close(alert, actor=None, note="resolved by its source")
    except DatabaseError:
        logger.exception("Could not resolve alert %s/%s", source, key)
        return None


def _close(alert: Alert, *, actor, note: str) -> Alert:
    alert.state = AlertState.RESOLVED
    alert.resolved_at = timezone.now()
    alert.resolved_by = actor
    alert.save(update_fields=["state", "resolved_at", "resolved_by"])
    AlertEvent.objects.create(alert=alert, kind="resolved", actor=actor, note=note)
    return alert


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
    alert.save(update_fields=["state", "acknowledged_at", "acknowledged_by"])
    AlertEvent.objects.create(alert=alert, kind="acknowledged", actor=actor)
    return alert


@transaction.atomic
def alert_resolve(*, alert: Alert, actor, note: str = "") -> Alert:
    """Resolve by hand (the source resolves on its own when the problem clears)."""
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if not alert.is_open:
        raise AlertNotOpen("The alert is already resolved.")
    return _close(alert, actor=actor, note=note or "resolved by hand")
