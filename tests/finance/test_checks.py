"""Financial checks: each one catches the corruption it exists for, as it happens in real life
(rows edited with the guards off, a balance row edited, a number gap...), fails the command,
raises its alert, and passes and resolves the alert once the data is fixed.

This module: a clean ledger passes them all, each is listed, and an explained finding. The
checks themselves, as finance/checks/ groups them: test_checks_{totals,numbering,amounts,states}.py.
"""

from decimal import Decimal

import pytest
from django.core.management import call_command

from alerts.models import Alert
from config import registry
from finance import services
from finance.models import AccountBalance
from integrity import services as integrity
from integrity.models import CheckRun
from tests.finance.factories import FiscalPeriodFactory
from tests.finance.helpers import alert, command_fails, finding

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
