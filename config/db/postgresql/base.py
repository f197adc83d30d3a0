"""Django's postgresql backend, with the project's engine features, exact decimal SQL
(config/db/decimals.py) and work held until commit (config/db/commit.py)."""

from django.db.backends.postgresql import base, features, operations

from config.db.commit import BeforeCommitMixin
from config.db.decimals import PostgresDecimalSql
from config.db.features import PostgresFeatures


class DatabaseOperations(PostgresDecimalSql, operations.DatabaseOperations):
    pass


class DatabaseFeatures(PostgresFeatures, features.DatabaseFeatures):
    pass


class DatabaseWrapper(BeforeCommitMixin, base.DatabaseWrapper):
    ops_class = DatabaseOperations
    features_class = DatabaseFeatures

    def check_deferred_now(self) -> None:
        # Foreign keys (Django makes them DEFERRABLE INITIALLY DEFERRED) and the ledger's
        # deferred balance trigger would otherwise be checked at COMMIT, after a hook locked
        # the audit chain head: a KEY SHARE lock on a fiscal period taken while holding the
        # head, against a posting that holds the period and waits for the head, is a deadlock.
        # Checked now, every lock of the transaction is taken before the head, always last.
        with self.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
