"""The ledger's raw SQL that differs per engine, in one place: money sums and comparisons.

Reconciliation reads (selectors.balance_mismatches, selectors.balance_recheck) and the
financial checks (finance/checks/) are raw SQL on purpose: each must read cache, numbers and
lines in ONE statement (one snapshot under READ COMMITTED), joins a grouped derived table, and
sums money exactly on SQLite, where the ORM's Sum would add floats. What differs per engine is
only how money is summed and compared, and the project's backends say how
(`connection.ops`, config/db/decimals.py): `money_sql()` asks them, never `connection.vendor`.
"""

from decimal import Decimal
from typing import Any

from django.db import connection as default_connection

from finance.models import POSTED_STATES, EntryStatus
from finance.money import MONEY_DECIMAL_PLACES

PLACES = Decimal(1).scaleb(-MONEY_DECIMAL_PLACES)  # the money columns' smallest unit

# The posted and the other states as SQL lists (constants from the model, never user input).
POSTED_SQL = "(" + ", ".join(f"'{s}'" for s in POSTED_STATES) + ")"
UNPOSTED_SQL = "(" + ", ".join(f"'{s}'" for s in EntryStatus.values if s not in POSTED_STATES) + ")"


class MoneySql:
    """Money in raw SQL on one connection: the backend's exact decimal SQL
    (config/db/decimals.py) at the money columns' places."""

    def __init__(self, connection: Any) -> None:
        self.ops = connection.ops

    def exact(self, expr: str) -> str:
        """SQL: `expr` (a money column or a sum of them) in a form that sums exactly."""
        return str(self.ops.exact_decimal_sql(expr, MONEY_DECIMAL_PLACES))

    def to_decimal(self, value: Any) -> Decimal:
        """A value read from `exact(...)` as a Decimal with the columns' places."""
        return Decimal(self.ops.exact_decimal_value(value, MONEY_DECIMAL_PLACES))

    def unquantized(self, expr: str, places: int) -> str:
        """SQL: `expr` has more than `places` decimals."""
        return str(self.ops.more_places_sql(expr, places))


def money_sql(connection: Any = None) -> MoneySql:
    """The engine's way to sum, compare and test money in raw SQL."""
    return MoneySql(connection or default_connection)


def posted_line_sql(alias: str) -> str:
    """SQL: the journal line `alias` belongs to a posted (or reversed) entry.

    Written as an anti-join on the few unposted entries (drafts and pending ones, found through
    the status index) rather than a join with every posted entry: a reconciliation then costs
    a scan of the lines, and a handful of accounts costs their lines only. Equivalent because
    the status CHECK constraint admits no other state (integrity.model_constraints checks it).
    """
    unposted = f"unposted.id = {alias}.entry_id AND unposted.status IN {UNPOSTED_SQL}"
    return f"NOT EXISTS (SELECT 1 FROM finance_journalentry unposted WHERE {unposted})"  # noqa: S608
