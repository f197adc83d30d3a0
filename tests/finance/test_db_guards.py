"""The database itself refuses to corrupt the ledger, whatever the application does."""

from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from finance.models import EntryStatus, JournalEntry, JournalLine
from tests.conftest import line
from tests.finance.factories import JournalEntryFactory


def raw(sql: str, params=()):
    with connection.cursor() as cursor:
        if connection.features.guard_dialect == "postgresql":
            # Tests run inside one transaction that never commits: make the deferred
            # balance trigger fire at the statement, as it would at COMMIT.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(sql, params)


def refused(sql: str, params=()) -> str:
    with pytest.raises(DatabaseError) as exc, transaction.atomic():
        raw(sql, params)
    assert "ledger." in str(exc.value)
    return str(exc.value)


@pytest.fixture
def posted(ledger, post):
    return post(ledger.cash, ledger.equity, "100.00")


def test_raw_update_of_posted_line_amount_is_refused(posted):
    refused("UPDATE finance_journalline SET amount = amount + 1 WHERE entry_id = %s", [posted.pk])
    assert {ln.amount for ln in posted.lines.all()} == {Decimal("100.00")}


def test_orm_bulk_update_of_posted_line_is_refused(posted):
    with pytest.raises(DatabaseError), transaction.atomic():
        JournalLine.objects.filter(entry=posted).update(amount=Decimal("1.00"))


def test_raw_delete_of_posted_lines_and_entry_is_refused(posted):
    refused("DELETE FROM finance_journalline WHERE entry_id = %s", [posted.pk])
    refused("DELETE FROM finance_journalentry WHERE id = %s", [posted.pk])
    assert JournalLine.objects.filter(entry=posted).count() == 2


def test_raw_insert_into_posted_entry_is_refused(posted, ledger):
    refused(
        "INSERT INTO finance_journalline (entry_id, line_no, account_id, side, amount, currency,"
        " description) VALUES (%s, 3, %s, 'D', 5, 'USD', '')",
        [posted.pk, ledger.cash.pk],
    )


@pytest.mark.parametrize(
    "assignment",
    ["description = 'edited'", "entry_date = '2001-01-01'", "status = 'draft'", "number = 99"],
)
def test_raw_update_of_posted_entry_is_refused(posted, assignment):
    refused(f"UPDATE finance_journalentry SET {assignment} WHERE id = %s", [posted.pk])
    posted.refresh_from_db()
    assert posted.status == EntryStatus.POSTED and posted.description == "Test entry"


def test_status_may_move_from_posted_to_reversed_only(posted):
    refused(
        "UPDATE finance_journalentry SET status = 'reversed', description = 'x' WHERE id = %s",
        [posted.pk],
    )
    raw("UPDATE finance_journalentry SET status = 'reversed' WHERE id = %s", [posted.pk])
    refused("UPDATE finance_journalentry SET status = 'posted' WHERE id = %s", [posted.pk])


def test_unbalanced_entry_cannot_be_marked_posted(ledger, clerk):
    entry = JournalEntryFactory(
        entry_date=ledger.today,
        description="Sneaky",
        lines=[
            line(ledger.cash, "D", Decimal("10.00")),
            line(ledger.equity, "C", Decimal("10.00")),
        ],
        created_by=clerk,
    )
    # Drafts may be changed; then try to post it behind the services' back.
    raw("UPDATE finance_journalline SET amount = 11 WHERE entry_id = %s AND side = 'D'", [entry.pk])
    message = refused(
        "UPDATE finance_journalentry SET status = 'posted', number = 1, fiscal_year = 2026,"
        " posted_at = CURRENT_TIMESTAMP WHERE id = %s",
        [entry.pk],
    )
    assert "unbalanced" in message
    assert JournalEntry.objects.get(pk=entry.pk).status == EntryStatus.DRAFT


def test_single_line_entry_cannot_be_posted(ledger, clerk):
    entry = JournalEntryFactory(
        entry_date=ledger.today,
        description="One line",
        lines=[
            line(ledger.cash, "D", Decimal("10.00")),
            line(ledger.equity, "C", Decimal("10.00")),
        ],
        created_by=clerk,
    )
    raw("DELETE FROM finance_journalline WHERE entry_id = %s AND side = 'C'", [entry.pk])
    refused(
        "UPDATE finance_journalentry SET status = 'posted', number = 1, fiscal_year = 2026,"
        " posted_at = CURRENT_TIMESTAMP WHERE id = %s",
        [entry.pk],
    )


@pytest.mark.postgres
def test_balance_trigger_is_a_deferred_constraint_trigger(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname, tgdeferrable, tginitdeferred FROM pg_trigger "
            "WHERE tgname LIKE 'finance_%%_balanced' ORDER BY tgname"
        )
        assert cursor.fetchall() == [
            ("finance_journalentry_balanced", True, True),
            ("finance_journalline_balanced", True, True),
        ]


def test_sqlite_immutability_trigger_covers_every_entry_column(db):
    """A migration adding a column to JournalEntry must reinstall the SQLite trigger."""
    if connection.features.guard_dialect != "sqlite":
        pytest.skip("SQLite lists the columns; PostgreSQL compares whole rows")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'finance_journalentry_immutable'"
        )
        (sql,) = cursor.fetchone()
    for field in JournalEntry._meta.concrete_fields:
        if field.column != "status":
            assert f'NEW."{field.column}" IS OLD."{field.column}"' in sql, field.column
