"""Integrity checks, health, transaction manager, idempotency and dead letters."""

from django.db.models.signals import post_migrate

# config.appconfig as a module, not its class: see config/apps.py.
from config import appconfig


class IntegrityConfig(appconfig.ProjectApp):
    name = "integrity"

    def ready(self) -> None:
        # Imported here: these modules import models, which exist only once apps are loaded.
        from django_q.signals import post_execute  # noqa: PLC0415

        from integrity import receivers  # noqa: PLC0415
        from integrity.scheduling import sync_after_migrate  # noqa: PLC0415
        from integrity.tasks import on_task_executed  # noqa: PLC0415

        # The design: declared schedules are written at migrate time (and by make run).
        post_migrate.connect(sync_after_migrate, sender=self, dispatch_uid="sync_schedules")
        post_execute.connect(on_task_executed, dispatch_uid="integrity_task_dead_letters")
        # The audit trail's verifications and checkpoint runs become the audit alerts.
        receivers.connect()
