"""Thresholds: each minute the metrics they watch are read, each threshold's state moves, and
a breach that held for its `for_minutes` raises an alert through the alert contract; only a
metric back past the clear value resolves it (hysteresis)."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from alerts.services import raise_alert, resolve_alert
from audit.services import audit_record
from config.admin_helpers import audit_state
from monitoring import selectors
from monitoring.histogram import percentile
from monitoring.models import DatabaseSnapshot, RequestBucket, TaskBucket, Threshold
from monitoring.services.metrics import SLOT_COLUMNS, slot_sums
from monitoring.taskmetrics import queue_figures

ALERT_SOURCE = "thresholds"
# A metric read from fewer requests than this says nothing (one slow request is not a p95).
MIN_REQUESTS = 20

MetricReader = Callable[[datetime], float | None]


def _window(now: datetime) -> datetime:
    return now - timedelta(minutes=settings.MONITORING_THRESHOLD_WINDOW_MINUTES)


def latency_p95_ms(now: datetime) -> float | None:
    sums = RequestBucket.objects.filter(minute__gte=_window(now)).aggregate(
        n=Sum("count"), **slot_sums()
    )
    if (sums["n"] or 0) < MIN_REQUESTS:
        return None
    p95 = percentile([sums[c] or 0 for c in SLOT_COLUMNS], 0.95)
    return None if p95 is None else p95 * 1000


def error_rate_percent(now: datetime) -> float | None:
    sums = RequestBucket.objects.filter(minute__gte=_window(now)).aggregate(
        n=Sum("count"), failed=Sum("count", filter=Q(status_class="5xx"))
    )
    if (sums["n"] or 0) < MIN_REQUESTS:
        return None
    return 100.0 * float(sums["failed"] or 0) / float(sums["n"])


def task_failure_rate_percent(now: datetime) -> float | None:
    sums = TaskBucket.objects.filter(minute__gte=_window(now)).aggregate(
        n=Sum("count"), failed=Sum("count", filter=Q(outcome=TaskBucket.Outcome.FAILURE))
    )
    if not sums["n"]:
        return None
    return 100.0 * float(sums["failed"] or 0) / float(sums["n"])


def queue_oldest_age_seconds(now: datetime) -> float | None:
    return queue_figures().oldest_age_seconds


def disk_free_percent(now: datetime) -> float | None:
    latest = selectors.fresh_snapshot(now)
    if latest is None or latest.disk_free_ratio is None:
        return None
    return 100.0 * latest.disk_free_ratio


def deadlocks_per_hour(now: datetime) -> float | None:
    """The deadlock counter's rise over the last hour (None across a statistics reset)."""
    latest = selectors.fresh_snapshot(now)
    if latest is None or latest.deadlocks is None:
        return None
    earlier = (
        DatabaseSnapshot.objects.filter(
            taken_at__lte=latest.taken_at - timedelta(minutes=55),
            taken_at__gte=latest.taken_at - timedelta(hours=3),
            deadlocks__isnull=False,
        )
        .order_by("-taken_at")
        .first()
    )
    if earlier is None or earlier.deadlocks is None or latest.deadlocks < earlier.deadlocks:
        return None
    return float(latest.deadlocks - earlier.deadlocks)


# Metric -> how to read it now (None: no reading, the threshold's state stays as it is).
READERS: dict[str, MetricReader] = {
    Threshold.Metric.LATENCY_P95_MS: latency_p95_ms,
    Threshold.Metric.ERROR_RATE_PERCENT: error_rate_percent,
    Threshold.Metric.TASK_FAILURE_RATE_PERCENT: task_failure_rate_percent,
    Threshold.Metric.QUEUE_OLDEST_AGE_SECONDS: queue_oldest_age_seconds,
    Threshold.Metric.DISK_FREE_PERCENT: disk_free_percent,
    Threshold.Metric.DEADLOCKS_PER_HOUR: deadlocks_per_hour,
    Threshold.Metric.DAYS_UNTIL_DISK_FULL: selectors.days_until_disk_full,
}


def thresholds_evaluate(*, now: datetime | None = None) -> list[str]:
    """Read each enabled threshold's metric and move its state; what changed, one line each."""
    now = now or timezone.now()
    readings: dict[str, float | None] = {}
    said = []
    for threshold in Threshold.objects.order_by("name"):
        if threshold.metric not in readings:
            reader = READERS.get(threshold.metric)
            readings[threshold.metric] = reader(now) if reader else None
        change = _move(threshold, readings[threshold.metric], now)
        if change:
            said.append(f"{threshold.name}: {change}")
    return said


def _move(threshold: Threshold, value: float | None, now: datetime) -> str:
    with transaction.atomic():
        row = Threshold.objects.select_for_update().get(pk=threshold.pk)
        change = ""
        row.last_value, row.last_evaluated_at = value, now
        if not row.enabled:
            change = "disabled" if row.firing else ""
            row.firing, row.breaching_since = False, None
        elif value is None:
            # No reading (light traffic, no fresh snapshot): a firing alert stays (only a
            # reading past the clear value resolves it), and a breach that has not fired yet
            # starts over, since nobody saw it hold through the gap.
            row.breaching_since = row.breaching_since if row.firing else None
        elif row.breached_by(value):
            row.breaching_since = row.breaching_since or now
            held = now - row.breaching_since >= timedelta(minutes=row.for_minutes)
            if held and not row.firing:
                row.firing, change = True, "fired"
        elif row.firing:
            if row.cleared_by(value):
                row.firing, row.breaching_since, change = False, None, "cleared"
        else:
            row.breaching_since = None  # under the line before it held: not a breach
        row.save(update_fields=["last_value", "last_evaluated_at", "firing", "breaching_since"])
    if change == "fired":
        raise_alert(
            source=ALERT_SOURCE,
            key=row.name,
            severity=row.severity,
            title=_title(row, value),
            details={
                "metric": row.metric,
                "value": value,
                "threshold": row.value,
                "comparison": row.comparison,
                "for_minutes": row.for_minutes,
                "clear_value": row.clear_value,
            },
        )
    elif change in ("cleared", "disabled"):
        resolve_alert(source=ALERT_SOURCE, key=row.name)
    return change


def _title(row: Threshold, value: float | None) -> str:
    label = Threshold.Metric(row.metric).label
    return (
        f"{row.name}: {label} is {value:.4g}, {row.comparison} {row.value:g} "
        f"for {row.for_minutes} min"
    )


def threshold_save(*, threshold: Threshold, actor: Any, created: bool) -> Threshold:
    """Save an admin's edit of a threshold, with its audit event (what changed)."""
    renamed_from = ""
    with transaction.atomic():
        stored = None if created else Threshold.objects.select_for_update().get(pk=threshold.pk)
        before = {} if stored is None else audit_state(stored)
        if stored is not None and stored.name != threshold.name and stored.firing:
            # The alert's key is the name: the old one is resolved, the new name's state
            # starts over (the next evaluation raises it again if the breach holds).
            renamed_from = stored.name
            threshold.firing, threshold.breaching_since = False, None
        threshold.full_clean()
        threshold.save()
        after = audit_state(threshold)
        changes = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
        audit_record(
            action="threshold.created" if created else "threshold.changed",
            obj=threshold,
            actor=actor,
            changes=changes,
        )
    if renamed_from:
        resolve_alert(source=ALERT_SOURCE, key=renamed_from)
    return threshold


def threshold_delete(*, threshold: Threshold, actor: Any) -> None:
    with transaction.atomic():
        audit_record(action="threshold.deleted", obj=threshold, actor=actor)
        threshold.delete()
    resolve_alert(source=ALERT_SOURCE, key=threshold.name)
