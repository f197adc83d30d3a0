"""Alerts, routing, escalation, channels and deliveries."""

from config import appconfig  # the module: see config/apps.py


class AlertsConfig(appconfig.ProjectApp):
    name = "alerts"

    def ready(self) -> None:
        # Here, not at the top: the checks read models, which load once the registry is ready.
        from alerts import checks  # noqa: F401 - registers the system checks
