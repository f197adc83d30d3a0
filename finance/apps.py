"""Ledger, accounts receivable, business rules and financial checks."""

from django.apps import AppConfig

from finance.db_guards import register_sqlite_functions


class FinanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "finance"
    verbose_name = "Ledger"

    def ready(self) -> None:
        register_sqlite_functions()
        # Registers the ledger's operations, so a dead letter can be retried in any process.
        import finance.services  # noqa: F401
