"""Checks about alerting: its configuration (`manage.py check --deploy`) and its own rows
(the check registry, run by `run_checks` with the integrity checks)."""

from collections.abc import Iterator

from django.conf import settings
from django.core.checks import Warning, register
from django.db.models import Q

from alerts.models import Alert
from config.registry import CheckContext, Finding
from config.registry import register as register_check


@register("alerts", deploy=True)
def webhook_secret_set(app_configs, **kwargs):
    if settings.ALERT_WEBHOOK_SECRET:
        return []
    return [
        Warning(
            "ALERT_WEBHOOK_SECRET is not set, so alert webhooks go out unsigned: a receiver "
            "cannot tell them from forged ones.",
            hint="Set ALERT_WEBHOOK_SECRET to a long random value and give it to the webhook "
            "receivers (docs/alerting.md, Channels).",
            id="alerts.W001",
        )
    ]


@register_check("alerts.impossible_states", tag="integrity", severity="error")
def impossible_states(ctx: CheckContext) -> Iterator[Finding]:
    """No alert is in a state its workflow cannot produce: resolved without its resolution time,
    acknowledged without its acknowledgement time.

    The services set both in the same transaction as the state; a row without them was written
    around them, and escalation and the dashboards would misread it."""
    rules = [
        (Q(state="resolved", resolved_at__isnull=True), "resolved without resolved_at"),
        (
            Q(state="acknowledged", acknowledged_at__isnull=True),
            "acknowledged without acknowledged_at",
        ),
    ]
    for condition, what in rules:
        bad = Alert.objects.filter(condition)
        count = bad.count()
        if count:
            yield Finding(
                message=f"{count} {Alert._meta.label} row(s) {what}",
                count=count,
                object_type=Alert._meta.label_lower,
                key=what,
                sample=list(bad.order_by("pk").values_list("pk", flat=True)[: ctx.sample_size]),
            )
