"""Django's sqlite3 backend, with audit events appended to the chain at commit (audit/pending.py)
and the functions the audit trail's triggers ask (audit/db_guards.py)."""

from django.db.backends.sqlite3 import base

from audit.db_guards import register_sqlite_functions
from audit.pending import AuditConnectionMixin


class DatabaseWrapper(AuditConnectionMixin, base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        register_sqlite_functions(connection)
        return connection
