"""Exact decimal arithmetic in raw SQL, per engine: methods of the project's backends' `ops`.

Raw SQL that sums or compares decimal columns (the ledger's reconciliation reads and checks)
asks the connection's operations instead of testing the engine:

- `exact_decimal_sql(expr, places)`: SQL for `expr` (a decimal column with `places` places, or a
  sum of such) in a form that sums exactly;
- `exact_decimal_value(value, places)`: a value read from that SQL as a `Decimal`;
- `more_places_sql(expr, places)`: SQL that is true when `expr` has more than `places` places.
"""

from decimal import Decimal
from typing import Any


class PostgresDecimalSql:
    """numeric is exact: sum and compare the columns as they are."""

    def exact_decimal_sql(self, expr: str, places: int) -> str:
        return expr

    def exact_decimal_value(self, value: Any, places: int) -> Decimal:
        return Decimal(value).quantize(Decimal(1).scaleb(-places))

    def more_places_sql(self, expr: str, places: int) -> str:
        return f"round({expr}, {places}) <> {expr}"


class SqliteDecimalSql:
    """SQLite keeps a decimal column as INTEGER or REAL (a float), or TEXT when a value does not
    convert. Float sums drift, so decimals are summed and compared as exact integers of the
    column's smallest unit; exact for sums below 9 * 10**(18 - places)."""

    def exact_decimal_sql(self, expr: str, places: int) -> str:
        return f"CAST(round(({expr}) * {10**places}) AS INTEGER)"

    def exact_decimal_value(self, value: Any, places: int) -> Decimal:
        return Decimal(int(value)).scaleb(-places).quantize(Decimal(1).scaleb(-places))

    def more_places_sql(self, expr: str, places: int) -> str:
        # round() goes through decimal text, so it returns the very float that a literal with
        # `places` decimals is stored as; the CAST reads a TEXT value as a number as well.
        real = f"CAST({expr} AS REAL)"
        return f"round({real}, {places}) <> {real}"
