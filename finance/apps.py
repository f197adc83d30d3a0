"""Ledger, accounts receivable, business rules and financial checks."""

from django.apps import AppConfig
from django.db.backends.signals import connection_created


class FinanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "finance"
    verbose_name = "Ledger"

    def ready(self) -> None:
        from finance.db_guards import register_sqlite_functions

        connection_created.connect(register_sqlite_functions, dispatch_uid="ledger_sqlite_fns")
        # Registers the ledger's operations, so a dead letter can be retried in any process.
        import finance.services  # noqa: F401
