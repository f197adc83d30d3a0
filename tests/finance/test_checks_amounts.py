"""The checks of finance/checks/amounts.py: amount_precision, negative_balances."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection  # noqa: F401 (the skipif condition below names it)
from django.utils import timezone

from finance import services
from finance.models import AccountBalance, JournalEntry, JournalLine
from integrity import services as integrity
from tests.finance.helpers import command_fails, command_passes, finding, guards_off, tamper

pytestmark = pytest.mark.django_db

D = Decimal


# 6. amount_precision ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "flagged"),
    [
        ("100.005", "USD", True),
        ("100.01", "USD", False),
        ("0.1", "USD", False),
        ("12345678901.23", "USD", False),
        ("12345678901.235", "USD", True),
        ("100.5", "JPY", True),
        ("100", "JPY", False),
        ("1.234", "KWD", False),
        ("1.2345", "KWD", True),
        ("5.00", "XXX", True),  # a currency the ledger does not know: cannot be judged
    ],
)
def test_amount_precision_judges_each_currency_by_its_minor_unit(
    ledger, post, amount, currency, flagged
):
    entry = post(ledger.cash, ledger.equity, "1.00")
    tamper(
        "UPDATE finance_journalline SET amount = %s, currency = %s WHERE entry_id = %s",
        [D(amount), currency, entry.pk],
    )
    run = integrity.checks_run(trigger="command", checks=["finance.amount_precision"])
    result = run.results.get()
    assert result.status == ("fail" if flagged else "pass")
    if flagged:
        found = run.findings.get()
        lines = sorted(entry.lines.values_list("pk", flat=True))
        assert (found.key, found.count, found.sample) == (currency, 2, lines)
        assert D(found.details["lines"][0]["amount"]) == D(amount)


@pytest.mark.skipif(
    "connection.features.guard_dialect != 'sqlite'", reason="only SQLite keeps a 5th decimal"
)
def test_amount_precision_sees_digits_below_the_columns_places_on_sqlite(ledger, post):
    entry = post(ledger.cash, ledger.equity, "1.00")
    tamper("UPDATE finance_journalline SET amount = 1.00001 WHERE entry_id = %s", [entry.pk])
    run = integrity.checks_run(trigger="command", checks=["finance.amount_precision"])
    assert run.findings.get().count == 2


def test_amount_precision_fails_the_command_and_resolves_once_fixed(books):
    tamper(
        "UPDATE finance_journalline SET amount = %s WHERE entry_id = %s",
        [D("100.005"), books.funding.pk],
    )
    run = command_fails("finance.amount_precision")
    found = finding(run, "finance.amount_precision")
    assert found.key == "USD" and found.details["places"] == 2
    assert found.sample == sorted(books.funding.lines.values_list("pk", flat=True))
    tamper(
        "UPDATE finance_journalline SET amount = %s WHERE entry_id = %s",
        [D("100.00"), books.funding.pk],
    )
    command_passes("finance.amount_precision")


def test_amount_precision_is_windowed(books):
    with guards_off():
        JournalEntry.objects.filter(pk=books.funding.pk).update(
            posted_at=timezone.now() - timedelta(hours=5)
        )
        JournalLine.objects.filter(entry=books.funding).update(amount=D("100.005"))
    since = timezone.now() - timedelta(hours=2)
    windowed = integrity.checks_run(
        trigger="schedule", checks=["finance.amount_precision"], since=since
    )
    assert windowed.results.get().status == "pass"
    full = integrity.checks_run(trigger="schedule", checks=["finance.amount_precision"])
    assert full.results.get().status == "fail"


# 7. negative_balances ---------------------------------------------------------------------


def test_negative_balances_finds_an_account_that_may_no_longer_go_negative(ledger, post):
    post(ledger.expense, ledger.overdraft, "75.00")  # allowed: the overdraft may go negative
    integrity.checks_run(trigger="command", tags=["finance"])  # clean
    services.account_update(account=ledger.overdraft, allow_negative=False)
    run = command_fails("finance.negative_balances")
    found = finding(run, "finance.negative_balances")
    assert (found.object_type, found.object_id, found.sample) == (
        "finance.account",
        str(ledger.overdraft.pk),
        ["1005"],
    )
    assert D(found.details["balance"]) == D("-75") and found.details["source"] == "balance cache"
    services.account_update(account=ledger.overdraft, allow_negative=True)
    command_passes("finance.negative_balances")


def test_negative_balances_judges_credit_normal_accounts_on_their_credit_side(books, ledger):
    AccountBalance.objects.filter(account=ledger.revenue).update(debit_total=D("10.00"))
    run = command_fails("finance.negative_balances")
    found = finding(run, "finance.negative_balances")
    assert found.object_id == str(ledger.revenue.pk) and "credit side" in found.message
    AccountBalance.objects.filter(account=ledger.revenue).update(debit_total=D("0"))
    command_passes("finance.negative_balances")
