"""Ledger test data, made the way production makes it.

Saved objects go through the services, so their balance row, sequence and audit trail exist
exactly as they would for a real user. `.build()` gives plain unsaved instances, for rules and
properties that need no database.
"""

import calendar
import random
from datetime import date
from decimal import Decimal

import factory
from django.utils import timezone

from finance import services
from finance.models import (
    Account,
    AccountBalance,
    AccountType,
    EntrySource,
    FiscalPeriod,
    JournalEntry,
    JournalLine,
    Side,
)


class AccountFactory(factory.django.DjangoModelFactory):
    """Accounts are made through the service so that their balance row exists."""

    class Meta:
        model = Account

    code = factory.Sequence(lambda n: f"{1000 + n}")
    name = factory.LazyAttribute(lambda a: f"Account {a.code}")
    type = AccountType.ASSET
    currency = "USD"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.account_create(**kwargs)


class AccountBalanceFactory(factory.django.DjangoModelFactory):
    """A balance row written directly, as an operator repairing the cache would (every account
    made by AccountFactory already has one: pass the `account` that lost it)."""

    class Meta:
        model = AccountBalance

    debit_total = Decimal("0")
    credit_total = Decimal("0")


class FiscalPeriodFactory(factory.django.DjangoModelFactory):
    """A fiscal period made through the service: by default the calendar month `month` of
    `year`."""

    class Meta:
        model = FiscalPeriod

    class Params:
        year = factory.LazyFunction(lambda: timezone.localdate().year)
        month = 1

    name = factory.LazyAttribute(lambda p: f"{p.year}-{p.month:02d}")
    start_date = factory.LazyAttribute(lambda p: date(p.year, p.month, 1))
    end_date = factory.LazyAttribute(
        lambda p: date(p.year, p.month, calendar.monthrange(p.year, p.month)[1])
    )
    fiscal_year = factory.LazyAttribute(lambda p: p.start_date.year)  # as the service's default

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.period_create(**kwargs)


def make_year(year: int) -> list[FiscalPeriod]:
    """The twelve monthly periods of `year`; months that exist already are kept."""
    periods = []
    for month in range(1, 13):
        existing = FiscalPeriod.objects.filter(name=f"{year}-{month:02d}").first()
        periods.append(existing or FiscalPeriodFactory(year=year, month=month))
    return periods


class JournalLineFactory(factory.django.DjangoModelFactory):
    """A line. Saved lines come with their entry (JournalEntryFactory); `.build()` one for
    the rules."""

    class Meta:
        model = JournalLine

    line_no = factory.Sequence(lambda n: n + 1)
    account = factory.SubFactory(AccountFactory)
    side = Side.DEBIT
    amount = Decimal("100.00")
    currency = factory.SelfAttribute("account.currency")
    description = ""


def _default_line(side: str, account_type: str) -> factory.Dict:
    return factory.Dict(
        {
            "account": factory.SubFactory(AccountFactory, type=account_type),
            "side": side,
            "amount": factory.SelfAttribute("...amount"),
        }
    )


class JournalEntryFactory(factory.django.DjangoModelFactory):
    """A draft made through journal_entry_create (the rules judged it, the trail has it).

    `lines` are dicts as the services take them (see tests.conftest.line); by default a debit
    and a credit of `amount` on two new accounts. `.build()` gives an unsaved entry without
    lines.
    """

    class Meta:
        model = JournalEntry

    class Params:
        amount = Decimal("100.00")

    entry_date = factory.LazyFunction(timezone.localdate)
    description = "Test entry"
    reference = ""
    source = EntrySource.MANUAL
    created_by = factory.SubFactory("tests.factories.UserFactory")
    lines = factory.List(
        [
            _default_line(Side.DEBIT, AccountType.ASSET),
            _default_line(Side.CREDIT, AccountType.EQUITY),
        ]
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.journal_entry_create(**kwargs)

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        kwargs.pop("lines")
        return model_class(*args, **kwargs)


def _line(account: Account, side: str, amount: Decimal) -> dict:
    return {"account": account, "side": side, "amount": amount}


def record_random_entries(ledger, actor, seed: int, count: int) -> None:
    """Record `count` random balanced entries (half of them three lines through cash) as a
    busy clerk would, for the concurrency tests; `seed` makes each thread's series its own."""
    rnd = random.Random(seed)
    accounts = [ledger.cash, ledger.expense, ledger.revenue, ledger.equity]
    for i in range(count):
        debit, credit = rnd.choice(accounts[:2]), rnd.choice(accounts[2:])
        amount = Decimal(rnd.randint(1, 500_00)) / 100
        if rnd.random() < 0.5:  # a 3-line entry touching the shared cash account
            half = (amount / 2).quantize(Decimal("0.01"))
            lines = [
                _line(ledger.cash, "D", amount),
                _line(credit, "C", half),
                _line(ledger.revenue, "C", amount - half),
            ]
        else:
            lines = [_line(debit, "D", amount), _line(credit, "C", amount)]
        services.journal_entry_record(
            entry_date=ledger.today,
            description=f"t{seed}-{i}",
            lines=lines,
            actor=actor,
            source=EntrySource.SYSTEM,
        )
