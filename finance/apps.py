"""Ledger, accounts receivable, business rules and financial checks."""

from django.apps import AppConfig
from django.db.backends.signals import connection_created

from integrity.operations import operation_register


class FinanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "finance"
    verbose_name = "Ledger"

    def ready(self) -> None:
        # Imported here: both load the ledger's models, which exist once the apps are ready.
        from finance.db_guards import register_sqlite_functions
        from finance.services.operations import OPERATIONS

        connection_created.connect(register_sqlite_functions, dispatch_uid="ledger_sqlite_fns")
        # So that a dead letter can be retried, and its payload's ids checked, in any process.
        for operation in OPERATIONS:
            operation_register(operation)
