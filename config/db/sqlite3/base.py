"""Django's sqlite3 backend, with the project's engine features, exact decimal SQL
(config/db/decimals.py), work held until commit (config/db/commit.py) and the functions the
apps' triggers ask (config/db/guards.py)."""

import decimal
from collections.abc import Callable
from typing import Any

from django.db.backends.sqlite3 import base, features, operations

from config.db.commit import BeforeCommitMixin
from config.db.decimals import SqliteDecimalSql
from config.db.features import SqliteFeatures
from config.db.guards import add_sqlite_functions


class DatabaseOperations(SqliteDecimalSql, operations.DatabaseOperations):
    def get_decimalfield_converter(self, expression: Any) -> Callable[[Any, Any, Any], Any]:
        """Django reads a decimal column back as 15 significant digits quantized to the column's
        places; a value SQLite rounded past the column's digits (9999999999999999.99 became
        1E+16, 21 digits with the places) made that quantize fail, and every read of the row
        with it: a 500 for every later list. Such a value (written before the ledger refused
        amounts over 15 significant digits) is read as SQLite kept it instead."""
        convert = super().get_decimalfield_converter(expression)
        create_decimal = decimal.Context(prec=15).create_decimal_from_float

        def converter(value: Any, expression: Any, connection: Any) -> Any:
            try:
                return convert(value, expression, connection)
            except decimal.InvalidOperation:
                return create_decimal(value)

        return converter


class DatabaseFeatures(SqliteFeatures, features.DatabaseFeatures):
    pass


class DatabaseWrapper(BeforeCommitMixin, base.DatabaseWrapper):
    ops_class = DatabaseOperations
    features_class = DatabaseFeatures

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        add_sqlite_functions(connection)
        return connection
