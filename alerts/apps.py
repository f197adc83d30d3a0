"""Alerts, routing, escalation, channels and deliveries."""

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "alerts"

    def ready(self) -> None:
        # Here, not at the top: the checks read models, which load once the registry is ready.
        from alerts import checks  # noqa: F401 - registers the system checks
