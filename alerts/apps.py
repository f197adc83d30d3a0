"""Alerts, routing, escalation, channels and deliveries."""

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "alerts"

    def ready(self) -> None:
        # Here, not at the top: models and signal receivers load once the app registry is ready.
        from django_q.signals import pre_enqueue

        from alerts import checks  # noqa: F401 - registers the system checks
        from alerts.receivers import report_task_on_its_last_attempt

        pre_enqueue.connect(report_task_on_its_last_attempt, dispatch_uid="alerts_report_task")
