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

        from django.core.signals import got_request_exception

        from monitoring.capture import record_uncaught_exception

        # Exceptions raised outside views (in middleware) never reach process_exception.
        got_request_exception.connect(
            record_uncaught_exception, dispatch_uid="monitoring.record_uncaught_exception"
        )
