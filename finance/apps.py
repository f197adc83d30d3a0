"""Ledger, accounts receivable, business rules and financial checks."""

# config.appconfig as a module, not its class: see config/apps.py.
from config import appconfig
from finance.db_guards import register_sqlite_functions
from integrity.operations import operation_register


class FinanceConfig(appconfig.ProjectApp):
    name = "finance"
    verbose_name = "Ledger"

    def ready(self) -> None:
        # Imported here: the operations load the ledger's models, which exist once apps are ready.
        from finance.services.operations import OPERATIONS  # noqa: PLC0415

        register_sqlite_functions()
        # So that a dead letter can be retried, and its payload's ids checked, in any process.
        for operation in OPERATIONS:
            operation_register(operation)
