"""Financial checks: each one catches the corruption it exists for, as it happens in real life
(rows edited with the guards off, a balance row edited, a number gap...), fails the command,
raises its alert, and passes and resolves the alert once the data is fixed."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from alerts.models import Alert
from config import registry
from finance import services
from finance.models import (
    AccountBalance,
    EntrySequence,
    FiscalPeriod,
    JournalEntry,
    JournalLine,
)
from integrity import services as integrity
from integrity.models import CheckRun
from tests.conftest import line
from tests.finance.factories import AccountBalanceFactory, FiscalPeriodFactory, JournalEntryFactory
from tests.finance.helpers import check_constraint_off, guards_off, tamper

pytestmark = pytest.mark.django_db

FINANCE_CHECKS = [
    "finance.amount_precision",
    "finance.balance_cache",
    "finance.closed_period_postings",
    "finance.entry_balanced",
    "finance.entry_number_gaps",
    "finance.negative_balances",
    "finance.trial_balance",
]
D = Decimal


@dataclass
class Books:
    funding: JournalEntry  # cash D 100 / equity C 100
    rent: JournalEntry  # expense D 40 / cash C 40
    euros: JournalEntry  # bank EUR D 50 / capital EUR C 50


@pytest.fixture
def books(ledger, post) -> Books:
    return Books(
        funding=post(ledger.cash, ledger.equity, "100.00"),
        rent=post(ledger.expense, ledger.cash, "40.00"),
        euros=post(ledger.bank_eur, ledger.equity_eur, "50.00"),
    )


def alert(name: str) -> Alert | None:
    return Alert.objects.filter(source="checks", key=name).order_by("-pk").first()


def latest_run() -> CheckRun:
    return CheckRun.objects.order_by("-pk").first()


def command_fails(name: str, *args: str) -> CheckRun:
    """`run_checks` (the finance tag unless told otherwise) exits 1 naming `name` as failing."""
    with pytest.raises(CommandError) as exc:
        call_command("run_checks", *(args or ("--tag", "finance")))
    assert exc.value.returncode == 1
    assert f"{name} (fail)" in str(exc.value)
    run = latest_run()
    assert run.results.get(check_name=name).status == "fail"
    firing = alert(name)
    assert firing.state == "firing"
    assert firing.severity == registry.all_checks()[name].severity
    return run


def command_passes(name: str, *args: str) -> CheckRun:
    """After the fix: `run_checks` exits 0, the check passes and its alert is resolved."""
    call_command("run_checks", *(args or ("--tag", "finance")))
    run = latest_run()
    assert run.results.get(check_name=name).status == "pass"
    assert alert(name).state == "resolved"
    return run


def finding(run: CheckRun, name: str, **filters):
    return run.findings.get(check_name=name, **filters)


def set_line_amount(entry: JournalEntry, side: str, amount: str) -> None:
    tamper(
        "UPDATE finance_journalline SET amount = %s WHERE entry_id = %s AND side = %s",
        [D(amount), entry.pk, side],
    )


# A clean ledger ---------------------------------------------------------------------------


def test_a_clean_ledger_passes_every_finance_check(books, ledger, approver, capsys):
    services.journal_entry_reverse(entry=books.rent, actor=approver)
    later = ledger.today.replace(year=ledger.today.year + 5, day=1)
    FiscalPeriodFactory(name="Spare", start_date=later, end_date=later)
    call_command("run_checks", "--tag", "finance")
    call_command("run_checks", "--check", "finance.impossible_states")
    statuses = dict(
        CheckRun.objects.filter(results__isnull=False).values_list(
            "results__check_name", "results__status"
        )
    )
    assert statuses == {name: "pass" for name in [*FINANCE_CHECKS, "finance.impossible_states"]}
    assert not Alert.objects.exists()


def test_checks_are_listed_with_their_one_line_description(capsys):
    call_command("run_checks", "--list")
    listing = capsys.readouterr().out
    for name in [*FINANCE_CHECKS, "finance.impossible_states"]:
        check = registry.all_checks()[name]
        assert check.description and "\n" not in check.description
        assert name in listing and check.description in listing
    assert registry.all_checks()["finance.impossible_states"].tag == "integrity"


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


# 4. closed_period_postings ----------------------------------------------------------------


def test_closed_period_postings_finds_entries_posted_after_the_close(books):
    period = books.funding.period
    FiscalPeriod.objects.filter(pk=period.pk).update(
        status="closed", closed_at=books.funding.posted_at - timedelta(hours=1)
    )
    run = command_fails("finance.closed_period_postings")
    found = finding(run, "finance.closed_period_postings", key="posted_after_close")
    ids = sorted([books.funding.pk, books.rent.pk, books.euros.pk])
    assert found.count == 3 and found.sample == ids and found.object_id == ""
    assert found.details["entries"][0]["period__name"] == period.name
    FiscalPeriod.objects.filter(pk=period.pk).update(closed_at=timezone.now())  # closed after
    command_passes("finance.closed_period_postings")


def test_closed_period_postings_finds_dates_and_years_outside_the_period(books):
    period = books.funding.period
    with guards_off():
        JournalEntry.objects.filter(pk=books.funding.pk).update(
            entry_date=period.start_date - timedelta(days=1)
        )
        JournalEntry.objects.filter(pk=books.rent.pk).update(fiscal_year=period.fiscal_year + 7)
    run = command_fails("finance.closed_period_postings")
    outside = finding(run, "finance.closed_period_postings", key="date_outside_period")
    assert outside.object_id == str(books.funding.pk) and outside.sample == [books.funding.pk]
    year = finding(run, "finance.closed_period_postings", key="fiscal_year_mismatch")
    assert year.sample == [books.rent.pk]
    with guards_off():
        JournalEntry.objects.filter(pk=books.funding.pk).update(entry_date=books.funding.entry_date)
        JournalEntry.objects.filter(pk=books.rent.pk).update(fiscal_year=period.fiscal_year)
    command_passes("finance.closed_period_postings")


# 5. entry_number_gaps ---------------------------------------------------------------------


def renumber(entry: JournalEntry, number: int) -> None:
    with guards_off():
        JournalEntry.objects.filter(pk=entry.pk).update(number=number)


def set_sequence(year: int, last: int) -> None:
    EntrySequence.objects.filter(fiscal_year=year).update(last_number=last)


def test_entry_number_gaps_finds_a_bumped_number(books):
    year = books.euros.fiscal_year
    assert books.euros.number == 3
    renumber(books.euros, 5)
    set_sequence(year, 5)
    run = command_fails("finance.entry_number_gaps")
    found = finding(run, "finance.entry_number_gaps")
    assert (found.key, found.sample, found.count) == (str(year), [3, 4], 2)
    assert found.details["gaps"] == [[3, 4]] and found.details["last_number"] == 5
    renumber(books.euros, 3)
    set_sequence(year, 3)
    command_passes("finance.entry_number_gaps")


def test_entry_number_gaps_finds_a_deleted_entry(books):
    year = books.rent.fiscal_year
    tamper("DELETE FROM finance_journalline WHERE entry_id = %s", [books.rent.pk])
    tamper("DELETE FROM finance_journalentry WHERE id = %s", [books.rent.pk])
    run = command_fails("finance.entry_number_gaps")
    found = finding(run, "finance.entry_number_gaps")
    assert found.key == str(year) and found.sample == [2] and "1 number(s) missing" in found.message
    renumber(books.euros, 2)  # the repair an accountant would document
    set_sequence(year, 2)
    # (the deleted lines still show in the balance cache: only this check is judged here)
    command_passes("finance.entry_number_gaps", "--check", "finance.entry_number_gaps")


def test_entry_number_gaps_finds_a_sequence_behind_or_ahead_and_duplicates(books):
    year = books.rent.fiscal_year
    set_sequence(year, 1)  # the next posting would take number 2 again
    run = command_fails("finance.entry_number_gaps")
    behind = finding(run, "finance.entry_number_gaps")
    assert behind.details["outside_sequence"] == 2 and behind.sample == []
    set_sequence(year, 4)  # a number skipped at the end
    assert finding(
        command_fails("finance.entry_number_gaps"), "finance.entry_number_gaps"
    ).sample == [4]
    set_sequence(year, 3)
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX finance_entry_number_unique_per_year")
    renumber(books.euros, 2)
    found = finding(command_fails("finance.entry_number_gaps"), "finance.entry_number_gaps")
    assert found.details["duplicates"] == [{"number": 2, "rows": 2}]
    assert found.sample == [3] and found.count == 2  # 3 missing, one number used twice
    renumber(books.euros, 3)
    command_passes("finance.entry_number_gaps")


def test_entry_number_gaps_finds_a_sequence_that_moved_in_a_year_without_entries(books):
    year = books.rent.fiscal_year - 1
    set_sequence(year, 2)
    found = finding(command_fails("finance.entry_number_gaps"), "finance.entry_number_gaps")
    assert (found.key, found.sample, found.count) == (str(year), [1, 2], 2)
    set_sequence(year, 0)
    command_passes("finance.entry_number_gaps")


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


# 8. impossible_states ---------------------------------------------------------------------

IMPOSSIBLE = ("--check", "finance.impossible_states")


def test_impossible_states_finds_a_reversed_entry_without_a_reversal(books):
    # The guards allow posted -> reversed (the reversal service needs it): a raw update does too.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE finance_journalentry SET status = 'reversed' WHERE id = %s", [books.funding.pk]
        )
    run = command_fails("finance.impossible_states", *IMPOSSIBLE)
    found = finding(run, "finance.impossible_states")
    assert (found.key, found.object_id, found.sample) == (
        "reversed_without_reversal",
        str(books.funding.pk),
        [books.funding.pk],
    )
    tamper("UPDATE finance_journalentry SET status = 'posted' WHERE id = %s", [books.funding.pk])
    command_passes("finance.impossible_states", *IMPOSSIBLE)


def test_impossible_states_finds_a_reversal_of_an_entry_not_marked_reversed(books, approver):
    reversal = services.journal_entry_reverse(entry=books.rent, actor=approver)
    clean = integrity.checks_run(trigger="command", checks=["finance.impossible_states"])
    assert clean.results.get().status == "pass"
    tamper("UPDATE finance_journalentry SET status = 'posted' WHERE id = %s", [books.rent.pk])
    run = command_fails("finance.impossible_states", *IMPOSSIBLE)
    found = finding(run, "finance.impossible_states")
    assert found.key == "reversal_of_unreversed" and found.sample == [reversal.pk]
    tamper("UPDATE finance_journalentry SET status = 'reversed' WHERE id = %s", [books.rent.pk])
    command_passes("finance.impossible_states", *IMPOSSIBLE)


def test_impossible_states_finds_a_closed_period_without_closed_at(ledger):
    period = FiscalPeriod.objects.order_by("start_date").first()
    FiscalPeriod.objects.filter(pk=period.pk).update(status="closed")
    run = command_fails("finance.impossible_states", *IMPOSSIBLE)
    found = finding(run, "finance.impossible_states")
    assert (found.key, found.object_type, found.sample) == (
        "closed_without_closed_at",
        "finance.fiscalperiod",
        [period.pk],
    )
    FiscalPeriod.objects.filter(pk=period.pk).update(status="open")
    command_passes("finance.impossible_states", *IMPOSSIBLE)


def test_impossible_states_finds_a_numbered_draft_and_a_posted_entry_without_number(
    books, clerk, ledger
):
    draft = JournalEntryFactory(
        entry_date=ledger.today,
        description="Draft",
        created_by=clerk,
        lines=[line(ledger.cash, "D", D("1.00")), line(ledger.equity, "C", D("1.00"))],
    )
    JournalEntry.objects.filter(pk=draft.pk).update(number=99, fiscal_year=ledger.today.year)
    with check_constraint_off("finance_journalentry", "finance_posted_entry_has_number"):
        tamper("UPDATE finance_journalentry SET number = NULL WHERE id = %s", [books.euros.pk])
        run = command_fails("finance.impossible_states", *IMPOSSIBLE)
        numbered = finding(run, "finance.impossible_states", key="unposted_with_number")
        assert numbered.sample == [draft.pk]
        unnumbered = finding(run, "finance.impossible_states", key="posted_without_number")
        assert unnumbered.sample == [books.euros.pk]
        tamper("UPDATE finance_journalentry SET number = 3 WHERE id = %s", [books.euros.pk])
    JournalEntry.objects.filter(pk=draft.pk).update(number=None, fiscal_year=None)
    command_passes("finance.impossible_states", *IMPOSSIBLE)


# Explanations -----------------------------------------------------------------------------


def test_an_explained_finding_does_not_fail_the_check(books, ledger, approver):
    AccountBalance.objects.filter(account=ledger.cash).update(debit_total=D("100.01"))
    run = command_fails("finance.balance_cache")
    reason = "Rounding carried over from the old system; see ticket 12"
    integrity.finding_explain(
        finding=finding(run, "finance.balance_cache"), actor=approver, reason=reason
    )
    again = integrity.checks_run(trigger="command", tags=["finance"])
    result = again.results.get(check_name="finance.balance_cache")
    assert (result.status, result.failing_count, result.explained_count) == ("pass", 0, 1)
    assert alert("finance.balance_cache").state == "resolved"
    # Another cent of drift is a new finding: the explanation covered that difference only.
    AccountBalance.objects.filter(account=ledger.cash).update(debit_total=D("100.02"))
    command_fails("finance.balance_cache")
