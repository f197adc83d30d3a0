"""The checks of finance/checks/totals.py: entry_balanced, trial_balance, balance_cache."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from finance import services
from finance.models import AccountBalance, JournalEntry
from integrity import services as integrity
from tests.conftest import line
from tests.finance.factories import AccountBalanceFactory
from tests.finance.helpers import alert, command_fails, command_passes, finding, guards_off, tamper

pytestmark = pytest.mark.django_db

D = Decimal


def set_line_amount(entry: JournalEntry, side: str, amount: str) -> None:
    tamper(
        "UPDATE finance_journalline SET amount = %s WHERE entry_id = %s AND side = %s",
        [D(amount), entry.pk, side],
    )


# 1. entry_balanced ------------------------------------------------------------------------


def test_entry_balanced_finds_an_edited_line_and_passes_once_fixed(books):
    set_line_amount(books.funding, "C", "90.00")
    run = command_fails("finance.entry_balanced")
    found = finding(run, "finance.entry_balanced")
    assert (found.key, found.object_type, found.object_id) == (
        "unbalanced",
        "finance.journalentry",
        str(books.funding.pk),
    )
    assert found.severity == "critical" and found.sample == [books.funding.pk]
    number = books.funding.display_number
    assert found.details["entries"] == [
        {"id": books.funding.pk, "number": number, "lines": 2, "difference": {"USD": "10.0000"}}
    ]
    set_line_amount(books.funding, "C", "100.00")
    command_passes("finance.entry_balanced")


def test_entry_balanced_judges_each_currency_of_a_multi_currency_entry(ledger, approver):
    entry = services.journal_entry_record(
        entry_date=ledger.today,
        description="Two currencies",
        actor=approver,
        lines=[
            line(ledger.cash, "D", D("10.00")),
            line(ledger.equity, "C", D("10.00")),
            line(ledger.bank_eur, "D", D("10.00")),
            line(ledger.equity_eur, "C", D("10.00")),
        ],
    )
    assert (
        integrity.checks_run(trigger="command", checks=["finance.entry_balanced"]).status == "pass"
    )
    # Debits and credits still net to zero over the entry, but not within each currency.
    tamper(
        "UPDATE finance_journalline SET amount = 20 WHERE entry_id = %s AND line_no IN (1, 4)",
        [entry.pk],
    )
    run = integrity.checks_run(trigger="command", checks=["finance.entry_balanced"])
    found = finding(run, "finance.entry_balanced")
    assert found.sample == [entry.pk]
    assert found.details["entries"][0]["difference"] == {"EUR": "-10.0000", "USD": "10.0000"}


def test_entry_balanced_finds_posted_entries_with_too_few_lines(books):
    tamper("DELETE FROM finance_journalline WHERE entry_id = %s", [books.euros.pk])
    tamper("DELETE FROM finance_journalline WHERE entry_id = %s AND side = 'C'", [books.rent.pk])
    run = command_fails("finance.entry_balanced")
    few = finding(run, "finance.entry_balanced", key="too_few_lines")
    assert few.count == 2 and few.sample == sorted([books.euros.pk, books.rent.pk])
    assert {e["id"]: e["lines"] for e in few.details["entries"]} == {
        books.euros.pk: 0,
        books.rent.pk: 1,
    }
    unbalanced = finding(run, "finance.entry_balanced", key="unbalanced")
    assert unbalanced.sample == [books.rent.pk]  # the one-line entry; the empty one has no sum


def test_entry_balanced_is_windowed_and_a_windowed_run_never_resolves_a_full_runs_alert(books):
    with guards_off():
        JournalEntry.objects.filter(pk=books.funding.pk).update(
            posted_at=timezone.now() - timedelta(hours=5)
        )
    set_line_amount(books.funding, "C", "90.00")
    command_fails("finance.entry_balanced")
    hourly = integrity.checks_run(
        trigger="schedule", tags=["finance"], since=timezone.now() - timedelta(hours=2)
    )
    assert hourly.results.get(check_name="finance.entry_balanced").status == "pass"
    assert alert("finance.entry_balanced").state == "firing"  # the window did not see it
    set_line_amount(books.rent, "D", "41.00")  # a recent entry: the window sees this one
    hourly = integrity.checks_run(
        trigger="schedule", tags=["finance"], since=timezone.now() - timedelta(hours=2)
    )
    assert finding(hourly, "finance.entry_balanced").sample == [books.rent.pk]
    set_line_amount(books.funding, "C", "100.00")
    set_line_amount(books.rent, "D", "40.00")
    integrity.checks_run(
        trigger="schedule", tags=["finance"], since=timezone.now() - timedelta(hours=2)
    )
    assert alert("finance.entry_balanced").state == "firing"
    command_passes("finance.entry_balanced")


# 2. trial_balance -------------------------------------------------------------------------


def test_trial_balance_reports_the_difference_per_currency(books):
    set_line_amount(books.funding, "C", "90.00")
    set_line_amount(books.euros, "D", "50.01")
    run = command_fails("finance.trial_balance")
    usd = finding(run, "finance.trial_balance", key="USD")
    assert usd.details == {
        "currency": "USD",
        "debits": "140.0000",
        "credits": "130.0000",
        "difference": "10.0000",
    }
    assert usd.sample == [books.funding.pk] and usd.count == 1
    eur = finding(run, "finance.trial_balance", key="EUR")
    assert eur.details["difference"] == "0.0100" and eur.sample == [books.euros.pk]
    set_line_amount(books.funding, "C", "100.00")
    set_line_amount(books.euros, "D", "50.00")
    command_passes("finance.trial_balance")


# 3. balance_cache -------------------------------------------------------------------------


def test_balance_cache_finds_an_edited_balance_row(books, ledger):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE finance_accountbalance SET debit_total = debit_total + 1 WHERE account_id = %s",
            [ledger.cash.pk],
        )
    run = command_fails("finance.balance_cache")
    found = finding(run, "finance.balance_cache")
    assert (found.object_type, found.object_id, found.sample) == (
        "finance.account",
        str(ledger.cash.pk),
        ["1000"],
    )
    assert found.severity == "critical" and found.key == "debit 1.0000 credit 0.0000"
    assert found.details["cached"] == {"debit": "101.0000", "credit": "40.0000"}
    assert found.details["computed"] == {"debit": "100.0000", "credit": "40.0000"}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE finance_accountbalance SET debit_total = debit_total - 1 WHERE account_id = %s",
            [ledger.cash.pk],
        )
    command_passes("finance.balance_cache")


def test_balance_cache_finds_an_account_with_lines_but_no_balance_row(books, ledger):
    AccountBalance.objects.filter(account=ledger.expense).delete()
    run = command_fails("finance.balance_cache")
    found = finding(run, "finance.balance_cache")
    assert found.object_id == str(ledger.expense.pk) and found.key == "no balance row"
    assert found.details["balance_row"] is False
    assert found.details["computed"] == {"debit": "40.0000", "credit": "0.0000"}
    AccountBalanceFactory(account=ledger.expense, debit_total=D("40.00"))
    command_passes("finance.balance_cache")


def test_balance_cache_sums_many_small_amounts_exactly(ledger, post):
    """SQLite keeps amounts as floats: 0.10 + 0.20 + ... drifts unless summed exactly."""
    for amount in ("0.10", "0.20", "0.30", "0.70", "1.10", "2.20", "3.30") * 3:
        post(ledger.cash, ledger.equity, amount)
    run = integrity.checks_run(trigger="command", checks=["finance.balance_cache"])
    assert run.results.get().status == "pass"
