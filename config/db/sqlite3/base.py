"""Django's sqlite3 backend, with audit events appended to the chain at commit (audit/pending.py)
and the functions the audit trail's triggers ask (audit/db_guards.py)."""

import decimal

from django.db.backends.sqlite3 import base, features, operations

from audit.db_guards import register_sqlite_functions
from audit.pending import AuditConnectionMixin
from config.db.features import SqliteFeatures


class DatabaseOperations(operations.DatabaseOperations):
    def get_decimalfield_converter(self, expression):
        """Django reads a decimal column back as 15 significant digits quantized to the column's
        places; a value SQLite rounded past the column's digits (9999999999999999.99 became
        1E+16, 21 digits with the places) made that quantize fail, and every read of the row
        with it: a 500 for every later list. Such a value (written before the ledger refused
        amounts over 15 significant digits) is read as SQLite kept it instead."""
        convert = super().get_decimalfield_converter(expression)
        create_decimal = decimal.Context(prec=15).create_decimal_from_float

        def converter(value, expression, connection):
            try:
                return convert(value, expression, connection)
            except decimal.InvalidOperation:
                return create_decimal(value)

        return converter


class DatabaseFeatures(SqliteFeatures, features.DatabaseFeatures):
    pass


class DatabaseWrapper(AuditConnectionMixin, base.DatabaseWrapper):
    ops_class = DatabaseOperations
    features_class = DatabaseFeatures

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        register_sqlite_functions(connection)
        return connection
