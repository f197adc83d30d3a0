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
