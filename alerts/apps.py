"""Alerts, routing, escalation, channels and deliveries."""

# config.appconfig as a module, not its class: see config/apps.py.
from config import appconfig


class AlertsConfig(appconfig.ProjectApp):
    name = "alerts"

    def ready(self) -> None:
        # Here, not at the top: the checks read models, which load once the registry is ready.
        from alerts import checks  # noqa: F401, PLC0415 - registers the system checks
