"""Ledger reports: balances, the trial balance and account statements.

Now from the balance table (kept by the postings), or as of a date from the posted lines.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Case, DecimalField, F, Q, QuerySet, Sum, Value, When, Window
from django.db.models.functions import Coalesce

from finance.models import (
    DEBIT_NORMAL,
    POSTED_STATES,
    Account,
    AccountBalance,
    JournalLine,
    Side,
)
from finance.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, ZERO

_MONEY = DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)


def _debits(prefix: str = "") -> Coalesce:
    return Coalesce(
        Sum(f"{prefix}amount", filter=Q(**{f"{prefix}side": Side.DEBIT})),
        Value(ZERO),
        output_field=_MONEY,
    )


def _credits(prefix: str = "") -> Coalesce:
    return Coalesce(
        Sum(f"{prefix}amount", filter=Q(**{f"{prefix}side": Side.CREDIT})),
        Value(ZERO),
        output_field=_MONEY,
    )


def natural_balance(account_type: str, debit: Decimal, credit: Decimal) -> Decimal:
    return debit - credit if account_type in DEBIT_NORMAL else credit - debit


def posted_lines(*, as_of: date | None = None, since: date | None = None) -> QuerySet[JournalLine]:
    lines = JournalLine.objects.filter(entry__status__in=POSTED_STATES)
    if as_of is not None:
        lines = lines.filter(entry__entry_date__lte=as_of)
    if since is not None:
        lines = lines.filter(entry__entry_date__gte=since)
    return lines


@dataclass
class BalanceRow:
    account_id: int
    code: str
    name: str
    type: str
    currency: str
    debit_total: Decimal
    credit_total: Decimal

    @property
    def balance(self) -> Decimal:
        return natural_balance(self.type, self.debit_total, self.credit_total)


def account_balance(*, account: Account, as_of: date | None = None) -> BalanceRow:
    """Balance now (from the balance table) or at the end of `as_of` (from posted lines)."""
    if as_of is None:
        bal = AccountBalance.objects.get(account=account)
        debit, credit = bal.debit_total, bal.credit_total
    else:
        totals = (
            posted_lines(as_of=as_of).filter(account=account).aggregate(d=_debits(), c=_credits())
        )
        debit, credit = totals["d"], totals["c"]
    return BalanceRow(
        account.pk, account.code, account.name, account.type, account.currency, debit, credit
    )


@dataclass
class TrialBalance:
    as_of: date | None
    rows: list[BalanceRow]
    totals: dict[str, dict[str, Decimal]] = field(default_factory=dict)

    @property
    def is_balanced(self) -> bool:
        return all(t["debit"] == t["credit"] for t in self.totals.values())


def trial_balance(*, as_of: date | None = None, currency: str | None = None) -> TrialBalance:
    """Debit and credit totals per account and per currency; zero difference when sound."""
    if as_of is None:
        qs = AccountBalance.objects.select_related("account").order_by("account__code")
        if currency:
            qs = qs.filter(account__currency=currency)
        rows = [
            BalanceRow(
                b.account_id,
                b.account.code,
                b.account.name,
                b.account.type,
                b.account.currency,
                b.debit_total,
                b.credit_total,
            )
            for b in qs
            if b.debit_total or b.credit_total
        ]
    else:
        lines = posted_lines(as_of=as_of)
        if currency:
            lines = lines.filter(currency=currency)
        grouped = (
            lines.values("account_id").annotate(d=_debits(), c=_credits()).order_by("account_id")
        )
        accounts = Account.objects.in_bulk([g["account_id"] for g in grouped])
        rows = [
            BalanceRow(a.pk, a.code, a.name, a.type, a.currency, g["d"], g["c"])
            for g in grouped
            if (a := accounts[g["account_id"]])
        ]
        rows.sort(key=lambda r: r.code)
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: {"debit": ZERO, "credit": ZERO})
    for r in rows:
        totals[r.currency]["debit"] += r.debit_total
        totals[r.currency]["credit"] += r.credit_total
    return TrialBalance(as_of=as_of, rows=rows, totals=dict(totals))


def account_balances(*, as_of: date | None = None, currency: str | None = None) -> list[BalanceRow]:
    """Every account's balance (zero ones too), ordered by code."""
    accounts = Account.objects.order_by("code")
    if currency:
        accounts = accounts.filter(currency=currency)
    found = {r.account_id: r for r in trial_balance(as_of=as_of, currency=currency).rows}
    return [
        found.get(a.pk) or BalanceRow(a.pk, a.code, a.name, a.type, a.currency, ZERO, ZERO)
        for a in accounts
    ]


def account_statement(
    *, account: Account, date_from: date | None = None, date_to: date | None = None
) -> tuple[Decimal, QuerySet[JournalLine]]:
    """Opening balance and the account's posted lines with a running balance.

    The running balance is a window sum, computed by the database before pagination, so a
    page in the middle of the statement still shows the right figures.
    """
    opening = ZERO
    if date_from is not None:
        before = posted_lines().filter(account=account, entry__entry_date__lt=date_from)
        t = before.aggregate(d=_debits(), c=_credits())
        opening = natural_balance(account.type, t["d"], t["c"])
    sign = 1 if account.type in DEBIT_NORMAL else -1
    signed = Case(
        When(side=Side.DEBIT, then=F("amount") * sign),
        default=F("amount") * -sign,
        output_field=_MONEY,
    )
    lines = posted_lines(as_of=date_to, since=date_from).filter(account=account)
    order = [F("entry__entry_date").asc(), F("entry__number").asc(), F("line_no").asc()]
    lines = (
        lines.select_related("entry")
        .annotate(
            signed_amount_value=signed,
            running_balance=Window(Sum(signed), order_by=order)
            + Value(opening, output_field=_MONEY),
        )
        .order_by("entry__entry_date", "entry__number", "line_no")
    )
    return opening, lines
