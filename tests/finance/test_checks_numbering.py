"""The checks of finance/checks/numbering.py: closed_period_postings, entry_number_gaps."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from finance.models import EntrySequence, FiscalPeriod, JournalEntry
from tests.finance.helpers import command_fails, command_passes, finding, guards_off, tamper

pytestmark = pytest.mark.django_db


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
