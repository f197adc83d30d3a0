"""Journal entries over the API: creation and its refusals (422 for a broken rule, 400 for a bad
shape, nothing written), the workflow from draft to reversal, idempotency keys, and the database
guard's refusal as the client sees it."""

from datetime import timedelta
from decimal import Decimal

import pytest

from finance import rules
from finance.models import AccountBalance, EntryStatus, FiscalPeriod, JournalEntry, JournalLine
from tests.finance.helpers import ENTRIES, assert_error, body


def assert_nothing_written():
    assert not JournalEntry.objects.exists()
    assert not JournalLine.objects.exists()


class TestCreateEntry:
    def test_clerk_creates_draft(self, api, ledger, clerk):
        response = api.as_user(clerk).post(ENTRIES, body(ledger), format="json")
        assert response.status_code == 201, response.content
        data = response.json()
        assert data["status"] == "draft" and data["number"] == ""
        assert [ln["amount"] for ln in data["lines"]] == ["100.00", "100.00"]

    @pytest.mark.parametrize(
        ("mutate", "code"),
        [
            (lambda b, lg: b["lines"][1].update(amount="99.99"), "entry.unbalanced"),
            (lambda b, lg: b["lines"].pop(), "entry.too_few_lines"),
            (
                lambda b, lg: [ln.update(amount="10.001") for ln in b["lines"]],
                "line.amount_not_quantized",
            ),
            (
                lambda b, lg: [ln.update(amount="-10.00") for ln in b["lines"]],
                "line.amount_not_positive",
            ),
            (lambda b, lg: b["lines"][0].update(currency="EUR"), "line.currency_mismatch"),
            (
                lambda b, lg: b.update(entry_date=(lg.today + timedelta(days=400)).isoformat()),
                "entry.date_in_future",
            ),
            (lambda b, lg: b.update(entry_date="1999-01-01"), "period.missing"),
        ],
    )
    def test_broken_rule_is_422_with_code_and_writes_nothing(
        self, api, ledger, clerk, mutate, code
    ):
        payload = body(ledger)
        mutate(payload, ledger)
        response = api.as_user(clerk).post(ENTRIES, payload, format="json")
        error = assert_error(response, 422, code)
        assert error["fields"]
        assert_nothing_written()

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({}, "entry_date"),
            ({"entry_date": "not-a-date", "description": "x", "lines": []}, "entry_date"),
            ({"entry_date": "2026-01-01", "description": "x", "lines": "nope"}, "lines"),
            (
                {
                    "entry_date": "2026-01-01",
                    "description": "x",
                    "lines": [{"account": 10**9, "side": "D", "amount": "1"}] * 2,
                },
                "lines",
            ),
            (
                {
                    "entry_date": "2026-01-01",
                    "description": "x",
                    "lines": [{"account": 1, "side": "X", "amount": "1"}] * 2,
                },
                "lines",
            ),
            (
                {
                    "entry_date": "2026-01-01",
                    "description": "x",
                    "lines": [{"account": 1, "side": "D", "amount": 10.5}] * 2,
                },
                "lines",
            ),
            (
                {
                    "entry_date": "2026-01-01",
                    "description": "x",
                    "lines": [{"account": 1, "side": "D", "amount": "NaN"}] * 2,
                },
                "lines",
            ),
            (
                {
                    "entry_date": "2026-01-01",
                    "description": "x",
                    "lines": [{"account": 1, "side": "D", "amount": "1e400"}] * 2,
                },
                "lines",
            ),
            ({"entry_date": "2026-01-01", "description": "x" * 501, "lines": []}, "description"),
        ],
    )
    def test_bad_shape_is_400_with_field_errors(self, api, ledger, clerk, payload, field):
        response = api.as_user(clerk).post(ENTRIES, payload, format="json")
        error = assert_error(response, 400, "invalid")
        assert field in error["fields"]
        assert_nothing_written()

    def test_malformed_json_is_400(self, api, ledger, clerk):
        response = api.as_user(clerk).post(
            ENTRIES, data=b'{"entry_date": ', content_type="application/json"
        )
        assert_error(response, 400, "parse_error")

    def test_too_many_lines_is_400(self, api, ledger, clerk):
        payload = body(ledger)
        payload["lines"] = payload["lines"] * 300
        response = api.as_user(clerk).post(ENTRIES, payload, format="json")
        assert_error(response, 400, "invalid")

    def test_auditor_cannot_create(self, api, ledger, auditor):
        response = api.as_user(auditor).post(ENTRIES, body(ledger), format="json")
        assert_error(response, 403, "permission_denied")
        assert_nothing_written()

    def test_anonymous_is_401(self, api, ledger):
        response = api.post(ENTRIES, body(ledger), format="json")
        assert_error(response, 401, "auth.not_authenticated")


class TestWorkflowOverApi:
    def test_draft_submit_approve_reverse(self, api, ledger, clerk, approver, post):
        post(ledger.cash, ledger.equity, "500.00")  # money to spend
        entry = api.as_user(clerk).post(ENTRIES, body(ledger), format="json").json()
        url = f"{ENTRIES}{entry['id']}/"
        assert api.post(url + "submit/").json()["status"] == "pending_approval"
        # a clerk may not approve
        assert_error(api.post(url + "approve/"), 403, "permission_denied")
        approved = api.as_user(approver).post(url + "approve/")
        assert approved.status_code == 200, approved.content
        assert approved.json()["status"] == "posted"
        assert approved.json()["number"] == f"JE-{ledger.today.year}-000002"
        reversal = api.post(url + "reverse/", {}, format="json")
        assert reversal.status_code == 201
        assert reversal.json()["reversal_of"] == entry["id"]
        assert api.get(url).json()["status"] == "reversed"
        assert AccountBalance.objects.get(account=ledger.cash).balance == Decimal("500.00")

    def test_self_approval_is_422(self, api, ledger, make_user, post):
        post(ledger.cash, ledger.equity, "500.00")
        both = make_user("finance_clerk", "finance_approver")
        entry = api.as_user(both).post(ENTRIES, body(ledger), format="json").json()
        api.post(f"{ENTRIES}{entry['id']}/submit/")
        assert_error(api.post(f"{ENTRIES}{entry['id']}/approve/"), 422, "entry.self_approval")
        assert JournalEntry.objects.get(pk=entry["id"]).status == EntryStatus.PENDING_APPROVAL

    def test_direct_post_of_manual_entry_is_422(self, api, ledger, clerk, approver):
        entry = api.as_user(clerk).post(ENTRIES, body(ledger), format="json").json()
        response = api.as_user(approver).post(f"{ENTRIES}{entry['id']}/post/")
        assert_error(response, 422, "entry.approval_required")

    def test_posted_entry_cannot_be_patched_or_deleted(self, api, ledger, clerk, post):
        entry = post(ledger.cash, ledger.equity)
        url = f"{ENTRIES}{entry.pk}/"
        assert_error(
            api.as_user(clerk).patch(url, {"description": "x"}, format="json"),
            422,
            "entry.invalid_state",
        )
        assert_error(api.delete(url), 422, "entry.invalid_state")
        assert JournalEntry.objects.get(pk=entry.pk).description == "Test entry"

    def test_put_is_not_offered(self, api, ledger, clerk):
        entry = api.as_user(clerk).post(ENTRIES, body(ledger), format="json").json()
        assert_error(
            api.put(f"{ENTRIES}{entry['id']}/", body(ledger), format="json"),
            405,
            "method_not_allowed",
        )

    def test_missing_entry_is_404(self, api, clerk, ledger):
        assert_error(api.as_user(clerk).post(f"{ENTRIES}999999/submit/"), 404, "not_found")
        assert_error(api.get("/api/v1/no-such-thing/"), 404, "not_found")

    def test_list_filters(self, api, ledger, clerk, post):
        post(ledger.cash, ledger.equity)
        api.as_user(clerk).post(ENTRIES, body(ledger), format="json")
        posted = api.get(ENTRIES, {"status": "posted"}).json()
        assert posted["count"] == 1
        by_account = api.get(ENTRIES, {"account": ledger.expense.pk}).json()
        assert by_account["count"] == 1
        assert_error(api.get(ENTRIES, {"status": "bogus"}), 400, "invalid")


class TestIdempotency:
    def test_same_key_same_body_replays_first_response(self, api, ledger, clerk):
        client = api.as_user(clerk)
        first = client.post(ENTRIES, body(ledger), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        again = client.post(ENTRIES, body(ledger), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert JournalEntry.objects.count() == 1

    def test_same_key_other_body_is_409(self, api, ledger, clerk):
        client = api.as_user(clerk)
        client.post(ENTRIES, body(ledger), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
        other = client.post(
            ENTRIES, body(ledger, "7.00"), format="json", HTTP_IDEMPOTENCY_KEY="k-2"
        )
        assert_error(other, 409, "idempotency.key_reused")
        assert JournalEntry.objects.count() == 1

    def test_rule_failure_is_replayed_not_rerun(self, api, ledger, clerk):
        client = api.as_user(clerk)
        bad = body(ledger, "1.00", "2.00")
        first = client.post(ENTRIES, bad, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
        again = client.post(ENTRIES, bad, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
        assert first.status_code == again.status_code == 422
        assert again.json() == first.json()

    def test_bad_shape_releases_the_key(self, api, ledger, clerk):
        client = api.as_user(clerk)
        assert (
            client.post(ENTRIES, {}, format="json", HTTP_IDEMPOTENCY_KEY="k-4").status_code == 400
        )
        ok = client.post(ENTRIES, body(ledger), format="json", HTTP_IDEMPOTENCY_KEY="k-4")
        assert ok.status_code == 201

    def test_keys_are_per_user(self, api, ledger, clerk, make_user):
        other = make_user("finance_clerk")
        api.as_user(clerk).post(ENTRIES, body(ledger), format="json", HTTP_IDEMPOTENCY_KEY="k-5")
        response = api.as_user(other).post(
            ENTRIES, body(ledger, "3.00"), format="json", HTTP_IDEMPOTENCY_KEY="k-5"
        )
        assert response.status_code == 201
        assert JournalEntry.objects.count() == 2

    def test_overlong_key_is_400(self, api, ledger, clerk):
        response = api.as_user(clerk).post(
            ENTRIES, body(ledger), format="json", HTTP_IDEMPOTENCY_KEY="k" * 256
        )
        assert_error(response, 400, "idempotency.key_invalid")
        assert_nothing_written()


def test_only_the_creator_edits_submits_or_deletes_a_draft(api, ledger, clerk, make_user):
    entry = api.as_user(clerk).post(ENTRIES, body(ledger), format="json").json()
    url = f"{ENTRIES}{entry['id']}/"
    other = api.as_user(make_user("finance_clerk", "finance_approver"))
    assert_error(
        other.patch(url, {"description": "mine now"}, format="json"), 422, "entry.not_owner"
    )
    assert_error(other.post(url + "submit/"), 422, "entry.not_owner")
    assert_error(other.delete(url), 422, "entry.not_owner")
    assert JournalEntry.objects.get(pk=entry["id"]).description == "Office supplies"


@pytest.mark.django_db(transaction=True)
def test_database_guard_refusal_is_422_not_500(api, ledger, clerk, approver, monkeypatch, post):
    """If a bug let an unbalanced entry reach the database, the trigger refuses it at commit
    and the client gets the guard's code, not a 500."""
    post(ledger.cash, ledger.equity, "100.00")
    payload = body(ledger, "10.00", "9.00")
    monkeypatch.setattr(rules, "validate_lines", lambda lines: [])  # the bug
    entry = api.as_user(clerk).post(ENTRIES, payload, format="json").json()
    api.post(f"{ENTRIES}{entry['id']}/submit/")
    response = api.as_user(approver).post(f"{ENTRIES}{entry['id']}/approve/")
    assert_error(response, 422, "ledger.unbalanced")
    assert JournalEntry.objects.get(pk=entry["id"]).status == EntryStatus.PENDING_APPROVAL
    assert AccountBalance.objects.get(account=ledger.cash).credit_total == 0
    assert AccountBalance.objects.get(account=ledger.cash).debit_total == Decimal("100.00")


def test_reversal_into_a_closed_period_is_refused(api, ledger, approver, post):
    entry = post(ledger.cash, ledger.equity)
    FiscalPeriod.objects.filter(pk=entry.period_id).update(status="closed")
    response = api.as_user(approver).post(f"{ENTRIES}{entry.pk}/reverse/", {}, format="json")
    assert_error(response, 422, "period.closed")
    entry.refresh_from_db()
    assert entry.status == EntryStatus.POSTED
    assert not JournalEntry.objects.filter(reversal_of=entry).exists()


def test_side_accepts_debit_and_credit_words(api, ledger, clerk):
    payload = body(ledger)
    payload["lines"][0]["side"], payload["lines"][1]["side"] = "debit", "Credit"
    response = api.as_user(clerk).post(ENTRIES, payload, format="json")
    assert response.status_code == 201
    assert [ln["side"] for ln in response.json()["lines"]] == ["D", "C"]
