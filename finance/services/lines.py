"""Journal lines: from what a caller typed to rule inputs, to rows, and as the trail shows them.

Shared by the draft services (entries.py) and the postings (posting.py, operations.py).
"""

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from simple_history.utils import bulk_create_with_history

from finance import money
from finance.models import Account, JournalEntry, JournalLine, Side
from finance.rules import LineInput

__all__ = [
    "entry_meta",
    "inputs_of",
    "line_inputs",
    "line_rows",
    "lines_summary",
    "write_lines",
]


def line_inputs(lines: Sequence[Mapping[str, Any]]) -> list[LineInput]:
    """Build rule inputs from dicts with account (Account or id), side, amount, ...

    Accounts are always read afresh (one query): a caller's instance may be stale, and the
    rules must judge the account as it is now (active, currency).
    """
    ids = set()
    for ln in lines:
        account = ln.get("account")
        ids.add(account.pk if isinstance(account, Account) else account)
    ids.discard(None)
    by_id = Account.objects.in_bulk([i for i in ids if isinstance(i, int)])
    result = []
    for ln in lines:
        account = ln.get("account")
        key = account.pk if isinstance(account, Account) else account
        result.append(
            LineInput(
                account=by_id.get(key) if isinstance(key, int) else None,
                side=ln.get("side", ""),
                amount=ln["amount"],
                currency=ln.get("currency") or None,
                description=ln.get("description", ""),
            )
        )
    return result


def inputs_of(entry: JournalEntry) -> list[LineInput]:
    """The entry's stored lines as rule inputs, in line order."""
    return [
        LineInput(
            account=line.account,
            side=line.side,
            amount=line.amount,
            currency=line.currency,
            description=line.description,
        )
        for line in entry.lines.select_related("account").order_by("line_no")
    ]


def write_lines(entry: JournalEntry, lines: Sequence[LineInput]) -> None:
    rows = [
        JournalLine(
            entry=entry,
            line_no=n,
            account=line.account,
            side=line.side,
            amount=line.amount,
            currency=_currency(line),
            description=line.description,
        )
        for n, line in enumerate(lines, start=1)
    ]
    bulk_create_with_history(rows, JournalLine, batch_size=500)


def _amount(amount: Decimal, currency: str) -> str:
    # Stored amounts carry the column's places, new ones the currency's: compare like with like.
    return str(money.quantize(amount, currency))


def _currency(line: LineInput) -> str:
    """Lines reach the trail only once judged (or stored), so each has a currency."""
    currency = line.effective_currency
    assert currency is not None
    return currency


def line_rows(lines: Sequence[LineInput]) -> list[list[str]]:
    """Lines as the trail keeps them: account code, side, amount, currency."""
    return [
        [
            line.account.code if line.account else "",
            line.side,
            _amount(line.amount, _currency(line)),
            _currency(line),
        ]
        for line in lines
    ]


def lines_summary(lines: Sequence[LineInput]) -> dict[str, Any]:
    """Line count and debit total per currency: what a reviewer of the trail checks first."""
    totals: dict[str, Decimal] = {}
    for line in lines:
        if line.side == Side.DEBIT:
            currency = _currency(line)
            totals[currency] = totals.get(currency, Decimal(0)) + line.amount
    return {
        "line_count": len(lines),
        "totals": {c: _amount(t, c) for c, t in sorted(totals.items())},
    }


class EntryFields(Protocol):
    """What the trail reads of an entry: a JournalEntry, or an entry about to be written."""

    @property
    def entry_date(self) -> date: ...
    @property
    def description(self) -> str: ...
    @property
    def source(self) -> str: ...


def entry_meta(entry: EntryFields, lines: Sequence[LineInput]) -> dict[str, Any]:
    """What the trail records about an entry besides its changes."""
    return {
        "entry_date": entry.entry_date,
        "description": entry.description[:200],
        "source": entry.source,
        **lines_summary(lines),
    }
