"""System checks (`manage.py check --deploy`) for the alerting configuration."""

from django.conf import settings
from django.core.checks import Warning, register


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
