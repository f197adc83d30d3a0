"""Request and database metrics, error log, thresholds."""

from django.core.signals import got_request_exception, request_finished

# config.appconfig as a module, not its class: see config/apps.py.
from config import appconfig, signals


class MonitoringConfig(appconfig.ProjectApp):
    name = "monitoring"

    def ready(self) -> None:
        # Imported here: receivers import models, which are not loaded before ready().
        from django_q.signals import post_execute, pre_execute  # noqa: PLC0415

        from monitoring import receivers  # noqa: PLC0415
        from monitoring.capture import record_failed_task, record_uncaught_exception  # noqa: PLC0415
        from monitoring.requestmetrics import write_when_due  # noqa: PLC0415

        # Failed django-q2 tasks go to the error log (sent by the cluster's monitor process).
        post_execute.connect(record_failed_task, dispatch_uid="monitoring.record_failed_task")
        # Every task's run into the task metrics: its start noted in the worker, its run
        # written by the monitor.
        pre_execute.connect(receivers.on_task_start, dispatch_uid="monitoring.task_start")
        post_execute.connect(receivers.on_task_done, dispatch_uid="monitoring.task_done")
        # Exceptions raised outside views (in middleware) never reach process_exception.
        got_request_exception.connect(
            record_uncaught_exception, dispatch_uid="monitoring.record_uncaught_exception"
        )
        # Request metrics are written after a response has gone out, at most every
        # MONITORING_FLUSH_SECONDS.
        request_finished.connect(write_when_due, dispatch_uid="monitoring.request_metrics")
        # Errors announced by the layers below the error log.
        signals.api_exception.connect(receivers.on_api_exception, dispatch_uid="monitoring.api")
        signals.operation_failed.connect(
            receivers.on_operation_failed, dispatch_uid="monitoring.operation"
        )
