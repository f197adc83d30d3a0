"""The check of finance/checks/states.py: impossible_states."""

from decimal import Decimal

import pytest
from django.db import connection

from finance import services
from finance.models import FiscalPeriod, JournalEntry
from integrity import services as integrity
from tests.conftest import line
from tests.finance.factories import JournalEntryFactory
from tests.finance.helpers import (
    check_constraint_off,
    command_fails,
    command_passes,
    finding,
    tamper,
)

pytestmark = pytest.mark.django_db

D = Decimal


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
