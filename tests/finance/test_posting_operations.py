"""Posting runs as an operation: retried on transient faults, dead-lettered when it breaks."""

from decimal import Decimal

import pytest
from django.db import OperationalError

from finance import services
from finance.models import AccountBalance, EntryStatus, JournalEntry
from integrity import services as integrity
from integrity.models import DeadLetter
from tests.conftest import line


class SerializationFailure(OperationalError):
    sqlstate = "40001"


@pytest.fixture
def pending(ledger, clerk, post):
    post(ledger.cash, ledger.equity, "100.00")
    entry = services.journal_entry_create(
        entry_date=ledger.today,
        description="Rent",
        created_by=clerk,
        lines=[
            line(ledger.expense, "D", Decimal("40.00")),
            line(ledger.cash, "C", Decimal("40.00")),
        ],
    )
    return services.journal_entry_submit(entry=entry, actor=clerk)


def test_approval_survives_a_transient_fault(pending, approver, monkeypatch, settings):
    settings.OPERATION_RETRY_BASE_SECONDS = 0
    real = services._post
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        result = real(*args, **kwargs)  # the work is done, then the fault rolls it back
        if len(calls) == 1:
            raise SerializationFailure("could not serialize access")
        return result

    monkeypatch.setattr(services, "_post", flaky)
    entry = services.journal_entry_approve(entry=pending, actor=approver)
    assert len(calls) == 2 and entry.status == EntryStatus.POSTED and entry.number == 2
    assert AccountBalance.objects.get(account_id=pending.lines.first().account_id).debit_total == (
        Decimal("40.00")
    )
    assert not DeadLetter.objects.exists()


def test_broken_approval_is_500_with_dead_letter_and_retry_posts_once(
    api, pending, approver, monkeypatch, alerts
):
    real = services._post

    def broken(*args, **kwargs):
        raise RuntimeError("balance cache unavailable")

    monkeypatch.setattr(services, "_post", broken)
    response = api.as_user(approver).post(f"/api/v1/entries/{pending.pk}/approve/")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "operation.failed"
    letter = DeadLetter.objects.get(pk=error["fields"]["dead_letter"])
    assert letter.payload == {"entry_id": pending.pk, "actor_id": approver.pk}
    assert JournalEntry.objects.get(pk=pending.pk).status == EntryStatus.PENDING_APPROVAL

    monkeypatch.setattr(services, "_post", real)  # the fix is deployed
    assert integrity.deadletter_retry(dead_letter=letter).status == "resolved"
    posted = JournalEntry.objects.get(pk=pending.pk)
    assert posted.status == EntryStatus.POSTED and posted.approved_by == approver
    assert AccountBalance.objects.get(account_id=pending.lines.first().account_id).debit_total == (
        Decimal("40.00")
    )


def test_api_idempotency_key_also_keys_the_reversal_operation(api, ledger, approver, post):
    """A client retry after a 5xx and the dead-letter retry share one key: one reversal."""
    from integrity.models import OperationRecord

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
    from django.utils import timezone

    return {
        "entry_id": entry.pk,
        "actor_id": approver.pk,
        "entry_date": timezone.localdate().isoformat(),
        "description": "",
    }
