"""Request and database metrics, error log, thresholds."""

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"

    def ready(self) -> None:
        from django_q.signals import post_execute

        from monitoring.capture import record_failed_task

        # Failed django-q2 tasks go to the error log (sent by the cluster's monitor process).
        post_execute.connect(record_failed_task, dispatch_uid="monitoring.record_failed_task")
