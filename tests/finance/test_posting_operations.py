"""Posting runs as an operation: retried on transient faults, dead-lettered when it breaks."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from finance import services
from finance.models import AccountBalance, EntryStatus, JournalEntry
from integrity import services as integrity
from integrity.models import DeadLetter, OperationRecord
from tests.conftest import line
from tests.finance.factories import JournalEntryFactory
from tests.finance.faults import (
    BALANCE_LOCK,
    RESULT_STORE,
    SEQUENCE_BUMP,
    SerializationFailure,
    statement_fault,
    statements,
)


@pytest.fixture
def pending(ledger, clerk, post):
    post(ledger.cash, ledger.equity, "100.00")
    entry = JournalEntryFactory(
        description="Rent",
        created_by=clerk,
        lines=[
            line(ledger.expense, "D", Decimal("40.00")),
            line(ledger.cash, "C", Decimal("40.00")),
        ],
    )
    return services.journal_entry_submit(entry=entry, actor=clerk)


def test_approval_survives_a_transient_fault(pending, approver, settings):
    settings.OPERATION_RETRY_BASE_SECONDS = 0
    # The posting is done, then the fault rolls it back (at the attempt's last statement).
    with (
        CaptureQueriesContext(connection) as queries,
        statement_fault(
            RESULT_STORE, lambda: SerializationFailure("could not serialize access"), times=1
        ) as faults,
    ):
        entry = services.journal_entry_approve(entry=pending, actor=approver)
    postings = statements(queries.captured_queries, SEQUENCE_BUMP)
    assert len(faults) == 1 and postings == 2
    assert entry.status == EntryStatus.POSTED and entry.number == 2
    assert AccountBalance.objects.get(account_id=pending.lines.first().account_id).debit_total == (
        Decimal("40.00")
    )
    assert not DeadLetter.objects.exists()


def test_broken_approval_is_500_with_dead_letter_and_retry_posts_once(
    api, pending, approver, alerts
):
    with statement_fault(BALANCE_LOCK, lambda: RuntimeError("balance cache unavailable")):
        response = api.as_user(approver).post(f"/api/v1/entries/{pending.pk}/approve/")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "operation.failed"
    letter = DeadLetter.objects.get(pk=error["fields"]["dead_letter"])
    assert letter.payload == {"entry_id": pending.pk, "actor_id": approver.pk}
    assert JournalEntry.objects.get(pk=pending.pk).status == EntryStatus.PENDING_APPROVAL

    # The fix is deployed (the fault is gone).
    assert integrity.deadletter_retry(dead_letter=letter).status == "resolved"
    posted = JournalEntry.objects.get(pk=pending.pk)
    assert posted.status == EntryStatus.POSTED and posted.approved_by == approver
    assert AccountBalance.objects.get(account_id=pending.lines.first().account_id).debit_total == (
        Decimal("40.00")
    )


def test_api_idempotency_key_also_keys_the_reversal_operation(api, ledger, approver, post):
    """A client retry after a 5xx and the dead-letter retry share one key: one reversal."""
    entry = post(ledger.cash, ledger.equity, "10.00")
    client = api.as_user(approver)
    first = client.post(
        f"/api/v1/entries/{entry.pk}/reverse/", {}, format="json", HTTP_IDEMPOTENCY_KEY="rev-42"
    )
    assert first.status_code == 201
    record = OperationRecord.objects.get(key=f"api:{approver.pk}:rev-42")
    assert record.name == "finance.journal_entry_reverse"
    letter = integrity.deadletter_create(
        operation=record.name,
        payload=_payload_of(record, entry, approver),
        idempotency_key=record.key,
    )
    assert integrity.deadletter_retry(dead_letter=letter).status == "resolved"
    assert JournalEntry.objects.filter(reversal_of=entry).count() == 1


def _payload_of(record, entry, approver):
    return {
        "entry_id": entry.pk,
        "actor_id": approver.pk,
        "entry_date": timezone.localdate().isoformat(),
        "description": "",
    }
