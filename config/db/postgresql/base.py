"""Django's postgresql backend, with audit events appended to the chain at commit
(audit/pending.py)."""

from django.db.backends.postgresql import base, features

from audit.pending import AuditConnectionMixin
from config.db.features import PostgresFeatures


class DatabaseFeatures(PostgresFeatures, features.DatabaseFeatures):
    pass


class DatabaseWrapper(AuditConnectionMixin, base.DatabaseWrapper):
    features_class = DatabaseFeatures

    def audit_before_append(self) -> None:
        # Foreign keys (Django makes them DEFERRABLE INITIALLY DEFERRED) and the ledger's
        # deferred balance trigger would otherwise be checked at COMMIT, after the chain head
        # is locked: a KEY SHARE lock on a fiscal period taken while holding the head, against
        # a posting that holds the period and waits for the head, is a deadlock. Checked now,
        # every lock of the transaction is taken before the head, which is always taken last.
        with self.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
