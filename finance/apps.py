"""Ledger, accounts receivable, business rules and financial checks."""

from django.apps import AppConfig

from finance.db_guards import register_sqlite_functions
from integrity.operations import operation_register


class FinanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "finance"
    verbose_name = "Ledger"

    def ready(self) -> None:
        # Imported here: the operations load the ledger's models, which exist once apps are ready.
        from finance.services.operations import OPERATIONS

        register_sqlite_functions()
        # So that a dead letter can be retried, and its payload's ids checked, in any process.
        for operation in OPERATIONS:
            operation_register(operation)
