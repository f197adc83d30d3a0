"""Integrity checks, health, transaction manager, idempotency and dead letters."""

from django.apps import AppConfig


class IntegrityConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrity"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from integrity.scheduling import sync_after_migrate

        # The design: declared schedules are written at migrate time (and by make run).
        post_migrate.connect(sync_after_migrate, sender=self, dispatch_uid="sync_schedules")

        from django_q.signals import post_execute

        post_execute.connect(on_task_executed, dispatch_uid="integrity_task_dead_letters")


def on_task_executed(sender, task, **kwargs) -> None:
    """django-q2's monitor: tasks that exhausted their attempts land in the dead-letter queue."""
    import logging

    from integrity.services import task_failure_dead_letter

    try:
        task_failure_dead_letter(task)
    except Exception:  # the monitor process must keep running
        logging.getLogger("ledgerguard.deadletters").exception(
            "Could not dead-letter task %s", task.get("name")
        )
