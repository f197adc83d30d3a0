import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from finance import services
from finance.models import JournalEntry
from integrity.idempotency import idempotency_purge_expired
from integrity.models import IdempotencyKey
from tests.integrity.factories import IdempotencyKeyFactory


def entry_body(ledger, amount="10.00"):
    return {
        "entry_date": ledger.today.isoformat(),
        "description": "Concurrent",
        "lines": [
            {"account": ledger.expense.pk, "side": "D", "amount": amount},
            {"account": ledger.overdraft.pk, "side": "C", "amount": amount},
        ],
    }


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_run_once(ledger, clerk, monkeypatch):
    real_create = services.journal_entry_create

    def slow_create(**kwargs):
        time.sleep(0.5)  # hold the first request inside the operation
        return real_create(**kwargs)

    monkeypatch.setattr(services, "journal_entry_create", slow_create)
    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def send():
        client = APIClient()
        client.force_authenticate(clerk)
        barrier.wait()
        try:
            response = client.post(
                "/api/v1/entries/",
                entry_body(ledger),
                format="json",
                HTTP_IDEMPOTENCY_KEY="same-key",
            )
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert JournalEntry.objects.count() == 1
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}
    row = IdempotencyKey.objects.get()
    assert row.status == IdempotencyKey.Status.COMPLETED and row.response_status == 201


def test_stored_keys_expire_and_are_purged(api, ledger, clerk):
    client = api.as_user(clerk)
    client.post("/api/v1/entries/", entry_body(ledger), format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    # An expired key no longer replays: the request runs again.
    again = client.post(
        "/api/v1/entries/", entry_body(ledger), format="json", HTTP_IDEMPOTENCY_KEY="old"
    )
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert JournalEntry.objects.count() == 2
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert idempotency_purge_expired() == 1
    assert not IdempotencyKey.objects.exists()


def test_abandoned_claim_is_taken_over(api, ledger, clerk):
    """A request whose process died mid-way leaves an in-progress claim; it goes stale."""
    client = api.as_user(clerk)
    IdempotencyKeyFactory(
        user=clerk,
        key="crashed",
        scope="POST /api/v1/entries/",
        request_hash="x",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    busy = client.post(
        "/api/v1/entries/", entry_body(ledger), format="json", HTTP_IDEMPOTENCY_KEY="crashed"
    )
    assert busy.status_code == 409
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    retried = client.post(
        "/api/v1/entries/", entry_body(ledger), format="json", HTTP_IDEMPOTENCY_KEY="crashed"
    )
    assert retried.status_code == 201
    assert JournalEntry.objects.count() == 1


def test_reversal_is_idempotent(api, ledger, approver, post):
    entry = post(ledger.cash, ledger.equity, "50.00")
    client = api.as_user(approver)
    url = f"/api/v1/entries/{entry.pk}/reverse/"
    first = client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="rev-1")
    second = client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="rev-1")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert JournalEntry.objects.filter(reversal_of=entry).count() == 1
    assert Decimal(first.json()["lines"][0]["amount"]) == Decimal("50")
