"""Immutable, hash-chained audit log."""

from django.apps import AppConfig


class AuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from audit import checks  # noqa: F401 - registers the system checks
        from audit.receivers import connect

        connect()  # the authentication signals
