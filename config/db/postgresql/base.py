"""Django's postgresql backend, with audit events appended to the chain at commit
(audit/pending.py)."""

from django.db.backends.postgresql import base

from audit.pending import AuditConnectionMixin


class DatabaseWrapper(AuditConnectionMixin, base.DatabaseWrapper):
    pass
