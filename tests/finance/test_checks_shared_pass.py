"""The shared passes of a full run (finance/checks/ledger_pass.py): the finance checks read the
ledger once per run and still find, each on its own, exactly what their own queries find, also
when several things are wrong at once or only one check can see the damage."""

from decimal import Decimal

import pytest
from django.db import connection

from config import registry
from finance.checks import ledger_pass
from finance.models import AccountBalance, JournalEntry
from integrity import services as integrity
from tests.finance.helpers import finding, tamper

pytestmark = pytest.mark.django_db

D = Decimal
LINE_CHECKS = [
    "finance.amount_precision",
    "finance.balance_cache",
    "finance.entry_balanced",
    "finance.trial_balance",
]


def statuses(run) -> dict[str, str]:
    return dict(run.results.values_list("check_name", "status"))


def findings(run, name) -> list[tuple]:
    return sorted(
        run.findings.filter(check_name=name).values_list("key", "count", "sample", "details")
    )


def alone(name: str):
    """The check run by itself: its own pass, nothing shared with another check."""
    return integrity.checks_run(trigger="command", checks=[name])


def test_the_passes_are_computed_once_per_run_and_only_for_full_runs(books):
    ctx = registry.CheckContext()
    first = ledger_pass.line_totals(ctx)
    assert ledger_pass.line_totals(ctx) is first  # the second check reads the first's pass
    assert ledger_pass.line_totals(registry.CheckContext()) is not first  # a new run reads anew
    assert first.cache_clean() and first.trial_clean() and first.precision_clean()
    years = ledger_pass.entry_totals(ctx)
    assert sum(y.posted for y in years.values()) == 3


def test_a_line_edited_in_place_is_seen_by_each_check_that_sees_it_and_only_those(books, ledger):
    # One credit of the funding entry cut by 10.005: the entry is unbalanced, the trial balance
    # is off, equity's lines no longer equal its cached balance, and the amount has a digit
    # below the cent. Four checks, one edited row.
    tamper(
        "UPDATE finance_journalline SET amount = 89.995 WHERE entry_id = %s AND side = 'C'",
        [books.funding.pk],
    )
    run = integrity.checks_run(trigger="command", tags=["finance"])
    assert statuses(run) == {
        "finance.amount_precision": "fail",
        "finance.balance_cache": "fail",
        "finance.closed_period_postings": "pass",
        "finance.entry_balanced": "fail",
        "finance.entry_number_gaps": "pass",
        "finance.negative_balances": "pass",
        "finance.trial_balance": "fail",
    }
    # Each check's findings are those it makes when it runs alone (its own query).
    for name in LINE_CHECKS:
        assert findings(run, name) == findings(alone(name), name), name
    assert finding(run, "finance.balance_cache").object_id == str(ledger.equity.pk)


def test_a_problem_only_the_cache_check_sees_is_found_in_a_shared_run(books, ledger):
    """A balance row edited: the lines are fine, so the entry and trial-balance checks (reading
    the same pass) pass while the cache check fails."""
    AccountBalance.objects.filter(account=ledger.cash).update(credit_total=D("40.01"))
    run = integrity.checks_run(trigger="command", tags=["finance"])
    assert statuses(run)["finance.balance_cache"] == "fail"
    assert {n: s for n, s in statuses(run).items() if n != "finance.balance_cache"} == {
        n: "pass" for n in statuses(run) if n != "finance.balance_cache"
    }
    assert finding(run, "finance.balance_cache").key == "debit 0.0000 credit 0.0100"


def test_two_entries_unbalanced_in_opposite_directions_net_to_zero_yet_are_both_found(books):
    """The trial balance nets to zero (both in USD, +5 and -5): only entry_balanced can see it,
    and the shared pass must not hide it. The cache check sees the accounts moved."""
    tamper(
        "UPDATE finance_journalline SET amount = 105 WHERE entry_id = %s AND side = 'C'",
        [books.funding.pk],
    )
    tamper(
        "UPDATE finance_journalline SET amount = 35 WHERE entry_id = %s AND side = 'C'",
        [books.rent.pk],
    )
    run = integrity.checks_run(trigger="command", tags=["finance"])
    assert statuses(run)["finance.trial_balance"] == "pass"
    assert finding(run, "finance.entry_balanced").sample == sorted(
        [books.funding.pk, books.rent.pk]
    )
    assert statuses(run)["finance.balance_cache"] == "fail"


def test_balanced_entries_moved_between_accounts_only_the_cache_check_sees(books, ledger):
    """Both lines of an entry re-pointed at other accounts of the same currency: every entry
    still balances and so does the trial balance; only the cache differs."""
    tamper(
        "UPDATE finance_journalline SET account_id = %s WHERE entry_id = %s AND side = 'D'",
        [ledger.expense.pk, books.funding.pk],
    )
    run = integrity.checks_run(trigger="command", tags=["finance"])
    failing = {n for n, s in statuses(run).items() if s != "pass"}
    assert failing == {"finance.balance_cache"}
    ids = {f.object_id for f in run.findings.filter(check_name="finance.balance_cache")}
    assert ids == {str(ledger.cash.pk), str(ledger.expense.pk)}


def test_a_posted_entry_without_lines_and_a_number_gap_at_once(books):
    """Deleting an entry's lines (entry_balanced) and a later entry (number gap, a year's
    counts): both checks of the shared entry pass report their own finding."""
    tamper("DELETE FROM finance_journalline WHERE entry_id = %s", [books.funding.pk])
    tamper("DELETE FROM finance_journalline WHERE entry_id = %s", [books.euros.pk])
    tamper("DELETE FROM finance_journalentry WHERE id = %s", [books.euros.pk])
    run = integrity.checks_run(trigger="command", tags=["finance"])
    few = finding(run, "finance.entry_balanced", key="too_few_lines")
    assert few.sample == [books.funding.pk]
    gaps = finding(run, "finance.entry_number_gaps")
    assert gaps.details["missing_count"] == 1
    for name in ("finance.entry_balanced", "finance.entry_number_gaps"):
        assert findings(run, name) == findings(alone(name), name)


def test_entry_numbers_fall_back_to_counting_when_the_unique_index_is_missing(books):
    """Without the unique index on (fiscal_year, number) the pass cannot rule duplicates out,
    and the check counts distinct numbers as before: a duplicate with a bumped sequence."""
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX finance_entry_number_unique_per_year")
    year, number = JournalEntry.objects.values_list("fiscal_year", "number").get(pk=books.rent.pk)
    tamper(
        "UPDATE finance_journalentry SET number = %s WHERE id = %s",
        [number - 1, books.rent.pk],
    )
    # The counts (3 posted, lowest 1, highest 3) no longer tell: 1, 1, 3 for a sequence at 3.
    run = integrity.checks_run(trigger="command", tags=["finance"])
    gaps = finding(run, "finance.entry_number_gaps", key=str(year))
    assert gaps.details["duplicates"] == [{"number": number - 1, "rows": 2}]
