"""POST /api/v1/entries/batch/: an integration posts many entries at once; each is posted or
refused on its own, the batch is idempotent, bad shapes are 400 and nothing is written."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from finance.models import AccountBalance, EntrySource, JournalEntry, JournalLine
from tests.finance.helpers import assert_error

BATCH = "/api/v1/entries/batch/"


@pytest.fixture
def integration(make_user):
    user = make_user(username="billing")
    user.user_permissions.add(Permission.objects.get(codename="record_journalentry"))
    return user


def one(ledger, amount="10.00", debit=None, credit=None):
    return {
        "entry_date": ledger.today.isoformat(),
        "description": "Invoice",
        "reference": "INV-1",
        "lines": [
            {"account": (debit or ledger.cash).pk, "side": "D", "amount": amount},
            {"account": (credit or ledger.revenue).pk, "side": "C", "amount": amount},
        ],
    }


def test_an_integration_posts_a_batch_and_sees_each_result(api, ledger, integration):
    entries = [one(ledger, "10.00"), one(ledger, "1.001"), one(ledger, "5.00")]
    entries.append({**one(ledger), "lines": [{"account": 999_999, "side": "D", "amount": "1"}]})
    response = api.as_user(integration).post(BATCH, {"entries": entries}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["posted"], data["refused"]) == (2, 2)
    first, unquantized, third, missing = data["results"]
    assert first == {
        "index": 0,
        "status": "posted",
        "id": first["id"],
        "number": f"JE-{ledger.today.year}-000001",
    }
    assert unquantized["status"] == "refused"
    assert set(unquantized["error"]) == {"code", "message", "fields"}
    assert unquantized["error"]["code"] == "line.amount_not_quantized"
    assert third["number"] == f"JE-{ledger.today.year}-000002"
    assert {v["code"] for vs in missing["error"]["fields"].values() for v in vs} == {
        "entry.too_few_lines",
        "line.account_missing",
    }
    posted = JournalEntry.objects.get(pk=first["id"])
    assert (posted.status, posted.source, posted.created_by) == ("posted", "system", integration)
    assert AccountBalance.objects.get(account=ledger.cash).debit_total == 15


def test_the_same_key_replays_the_batch_and_another_body_is_409(api, ledger, integration):
    client = api.as_user(integration)
    body = {"entries": [one(ledger)]}
    first = client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    again = client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = client.post(
        BATCH, {"entries": [one(ledger, "2.00")]}, format="json", HTTP_IDEMPOTENCY_KEY="batch-1"
    )
    assert_error(other, 409, "idempotency.key_reused")
    assert JournalEntry.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "entries"),
        ({"entries": []}, "entries"),
        ({"entries": "x"}, "entries"),
        ({"entries": [{"description": "x", "lines": []}]}, "entries"),
        (
            {
                "entries": [
                    {
                        "entry_date": "2026-01-01",
                        "description": "x",
                        "lines": [{"account": "1000", "side": "D", "amount": "1"}],
                    }
                ]
            },
            "entries",
        ),
        (
            {
                "entries": [
                    {
                        "entry_date": "2026-01-01",
                        "description": "x",
                        "lines": [{"account": 1, "side": "D", "amount": 1.5}],
                    }
                ]
            },
            "entries",
        ),
        (
            {
                "entries": [
                    {
                        "entry_date": "2026-01-01",
                        "description": "x",
                        "lines": [{"account": 2**70, "side": "D", "amount": "1"}],
                    }
                ]
            },
            "entries",
        ),
    ],
)
def test_a_bad_shape_is_400_and_writes_nothing(api, ledger, integration, payload, field):
    response = api.as_user(integration).post(BATCH, payload, format="json")
    error = assert_error(response, 400, "invalid")
    assert field in error["fields"]
    assert not JournalEntry.objects.exists()


def test_a_batch_over_the_limits_is_400(api, ledger, integration):
    many = {"entries": [one(ledger)] * 1001}
    assert_error(api.as_user(integration).post(BATCH, many, format="json"), 400, "invalid")
    wide = one(ledger)
    wide["lines"] = wide["lines"] * 250  # 500 lines an entry, 21 entries: 10,500 lines
    error = assert_error(
        api.as_user(integration).post(BATCH, {"entries": [wide] * 21}, format="json"),
        400,
        "invalid",
    )
    assert "10,000" in str(error["fields"])
    assert not JournalEntry.objects.exists()


def test_people_cannot_post_batches_whatever_their_role(api, ledger, clerk, approver):
    for user in (clerk, approver):
        response = api.as_user(user).post(BATCH, {"entries": [one(ledger)]}, format="json")
        assert_error(response, 403, "permission_denied")
    anonymous = APIClient().post(BATCH, {"entries": [one(ledger)]}, format="json")
    assert_error(anonymous, 401, "auth.not_authenticated")
    assert not JournalEntry.objects.exists()


def test_batch_entries_are_system_entries(api, ledger, integration, settings):
    """Manual entries over the threshold need a second person; an integration's are system
    entries, which the rules post without approval (as journal_entry_record does)."""
    settings.LEDGER_APPROVAL_THRESHOLDS = {"*": "0"}
    response = api.as_user(integration).post(BATCH, {"entries": [one(ledger)]}, format="json")
    assert response.json()["posted"] == 1
    assert JournalEntry.objects.get().source == EntrySource.SYSTEM


def test_history_rows_name_the_integration_as_a_single_posting_names_its_user(
    api, ledger, integration
):
    response = api.as_user(integration).post(BATCH, {"entries": [one(ledger)]}, format="json")
    entry = JournalEntry.objects.get(pk=response.json()["results"][0]["id"])
    assert set(entry.history.values_list("history_user_id", flat=True)) == {integration.pk}
    lines = JournalLine.history.filter(entry_id=entry.pk)
    assert set(lines.values_list("history_user_id", flat=True)) == {integration.pk}
