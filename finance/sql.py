"""The ledger's raw SQL that differs per engine, in one place: money sums and comparisons.

Reconciliation reads (selectors.balance_mismatches, selectors.balance_recheck) and the
financial checks (finance/checks/) are raw SQL on purpose: each must read cache, numbers and
lines in ONE statement (one snapshot under READ COMMITTED), joins a grouped derived table, and
sums money exactly on SQLite, where the ORM's Sum would add floats. What differs per engine is
only how money is summed and compared: `money_sql()` picks the engine's way through the
backend's features (config/db/features.py), never `connection.vendor`.
"""

from decimal import Decimal
from typing import Any, Protocol

from django.db import connection as default_connection

from config.db.features import guard_dialect
from finance.models import POSTED_STATES, EntryStatus
from finance.money import MONEY_DECIMAL_PLACES

PLACES = Decimal(1).scaleb(-MONEY_DECIMAL_PLACES)  # the money columns' smallest unit

# The posted and the other states as SQL lists (constants from the model, never user input).
POSTED_SQL = "(" + ", ".join(f"'{s}'" for s in POSTED_STATES) + ")"
UNPOSTED_SQL = "(" + ", ".join(f"'{s}'" for s in EntryStatus.values if s not in POSTED_STATES) + ")"


class MoneySql(Protocol):
    def exact(self, expr: str) -> str:
        """SQL: `expr` (a money column or a sum of them) in a form that sums exactly."""

    def to_decimal(self, value: Any) -> Decimal:
        """A value read from `exact(...)` as a Decimal with the columns' places."""

    def unquantized(self, expr: str, places: int) -> str:
        """SQL: `expr` has more than `places` decimals."""


class PostgresMoneySql:
    """numeric is exact: sum and compare the columns as they are."""

    def exact(self, expr: str) -> str:
        return expr

    def to_decimal(self, value: Any) -> Decimal:
        return Decimal(value).quantize(PLACES)

    def unquantized(self, expr: str, places: int) -> str:
        return f"round({expr}, {places}) <> {expr}"


class SqliteMoneySql:
    """SQLite keeps a decimal column as INTEGER or REAL (a float), or TEXT when a value does not
    convert. Float sums drift, so money is summed and compared as exact integers of the column's
    smallest unit (1/10,000); exact for amounts below 9 * 10**11."""

    scale = 10**MONEY_DECIMAL_PLACES

    def exact(self, expr: str) -> str:
        return f"CAST(round(({expr}) * {self.scale}) AS INTEGER)"

    def to_decimal(self, value: Any) -> Decimal:
        return Decimal(int(value)).scaleb(-MONEY_DECIMAL_PLACES).quantize(PLACES)

    def unquantized(self, expr: str, places: int) -> str:
        # round() goes through decimal text, so it returns the very float that a literal with
        # `places` decimals is stored as; the CAST reads a TEXT value as a number as well.
        real = f"CAST({expr} AS REAL)"
        return f"round({real}, {places}) <> {real}"


MONEY_SQL: dict[str, MoneySql] = {"postgresql": PostgresMoneySql(), "sqlite": SqliteMoneySql()}


def money_sql(connection: Any = None) -> MoneySql:
    """The engine's way to sum, compare and test money in raw SQL (see the two classes)."""
    return MONEY_SQL[guard_dialect(connection or default_connection)]


def posted_line_sql(alias: str) -> str:
    """SQL: the journal line `alias` belongs to a posted (or reversed) entry.

    Written as an anti-join on the few unposted entries (drafts and pending ones, found through
    the status index) rather than a join with every posted entry: a reconciliation then costs
    a scan of the lines, and a handful of accounts costs their lines only. Equivalent because
    the status CHECK constraint admits no other state (integrity.model_constraints checks it).
    """
    unposted = f"unposted.id = {alias}.entry_id AND unposted.status IN {UNPOSTED_SQL}"
    return f"NOT EXISTS (SELECT 1 FROM finance_journalentry unposted WHERE {unposted})"  # noqa: S608
