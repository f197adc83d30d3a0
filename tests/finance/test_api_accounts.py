"""The chart of accounts, periods, balances and the trial balance over the API (and where the
site's root leads)."""

from datetime import timedelta
from decimal import Decimal

from finance.models import FiscalPeriod
from tests.finance.helpers import ENTRIES, assert_error, body


class TestAccountsApi:
    def test_admin_creates_account_with_balance(self, api, ledger, admin_user):
        response = api.as_user(admin_user).post(
            "/api/v1/accounts/",
            {"code": "1300", "name": "Prepaid", "type": "asset", "currency": "USD"},
            format="json",
        )
        assert response.status_code == 201, response.content
        assert response.json()["balance"] == "0.00"

    def test_unknown_currency_is_400(self, api, ledger, admin_user):
        response = api.as_user(admin_user).post(
            "/api/v1/accounts/",
            {"code": "1301", "name": "X", "type": "asset", "currency": "XXX"},
            format="json",
        )
        assert_error(response, 400, "invalid")

    def test_duplicate_code_is_400(self, api, ledger, admin_user):
        response = api.as_user(admin_user).post(
            "/api/v1/accounts/",
            {"code": "1000", "name": "Again", "type": "asset", "currency": "USD"},
            format="json",
        )
        assert "code" in assert_error(response, 400, "invalid")["fields"]

    def test_account_with_postings_is_locked(self, api, ledger, admin_user, post):
        post(ledger.cash, ledger.equity)
        url = f"/api/v1/accounts/{ledger.cash.pk}/"
        client = api.as_user(admin_user)
        assert_error(
            client.patch(url, {"currency": "EUR"}, format="json"), 422, "account.has_postings"
        )
        assert_error(client.delete(url), 422, "account.has_postings")
        assert client.patch(url, {"name": "Bank"}, format="json").json()["name"] == "Bank"

    def test_clerk_cannot_change_chart(self, api, ledger, clerk):
        response = api.as_user(clerk).patch(
            f"/api/v1/accounts/{ledger.cash.pk}/", {"name": "Mine"}, format="json"
        )
        assert_error(response, 403, "permission_denied")

    def test_balance_statement_and_trial_balance(self, api, ledger, auditor, post):
        post(ledger.cash, ledger.equity, "100.00", entry_date=ledger.today - timedelta(days=2))
        post(ledger.expense, ledger.cash, "40.00")
        client = api.as_user(auditor)
        bal = client.get(f"/api/v1/accounts/{ledger.cash.pk}/balance/").json()
        assert bal["balance"] == "60.00"
        past = client.get(
            f"/api/v1/accounts/{ledger.cash.pk}/balance/",
            {"as_of": (ledger.today - timedelta(days=1)).isoformat()},
        ).json()
        assert Decimal(past["balance"]) == Decimal("100")
        statement = client.get(
            f"/api/v1/accounts/{ledger.cash.pk}/statement/", {"page_size": 1, "page": 2}
        ).json()
        assert statement["count"] == 2
        assert [Decimal(r["running_balance"]) for r in statement["results"]] == [Decimal("60")]
        tb = client.get("/api/v1/trial-balance/").json()
        assert tb["balanced"] is True
        assert tb["totals"]["USD"]["debit"] == tb["totals"]["USD"]["credit"]
        assert_error(client.get("/api/v1/trial-balance/", {"as_of": "yesterday"}), 400, "invalid")


class TestPeriodsApi:
    def test_close_needs_its_permission_and_records_who(self, api, ledger, clerk, approver):
        p = FiscalPeriod.objects.get(start_date__lte=ledger.today, end_date__gte=ledger.today)
        assert_error(
            api.as_user(clerk).post(f"/api/v1/periods/{p.pk}/close/"), 403, "permission_denied"
        )
        closed = api.as_user(approver).post(f"/api/v1/periods/{p.pk}/close/").json()
        assert closed["status"] == "closed" and closed["closed_by"] == approver.pk
        # approvers close; reopening is the admin's
        assert_error(api.post(f"/api/v1/periods/{p.pk}/reopen/"), 403, "permission_denied")
        created = api.as_user(clerk).post(ENTRIES, body(ledger), format="json")
        assert_error(created, 422, "period.closed")

    def test_overlapping_period_is_422(self, api, ledger, admin_user):
        response = api.as_user(admin_user).post(
            "/api/v1/periods/",
            {
                "name": "odd",
                "start_date": ledger.today.isoformat(),
                "end_date": ledger.today.isoformat(),
            },
            format="json",
        )
        assert_error(response, 422, "period.overlap")


def test_balances_lists_every_account_as_of_a_date(api, ledger, auditor, post):
    post(ledger.cash, ledger.equity, "10.00", entry_date=ledger.today - timedelta(days=1))
    post(ledger.cash, ledger.equity, "5.00")
    client = api.as_user(auditor)
    now = client.get("/api/v1/balances/").json()
    assert now["count"] == 8
    by_code = {r["code"]: r for r in now["results"]}
    assert by_code["1000"]["balance"] == "15.00" and by_code["6000"]["balance"] == "0.00"
    before = client.get(
        "/api/v1/balances/",
        {"as_of": (ledger.today - timedelta(days=1)).isoformat(), "currency": "USD"},
    ).json()
    assert {r["code"]: Decimal(r["balance"]) for r in before["results"]}["1000"] == Decimal("10")
    assert before["count"] == 6


def test_root_redirects_to_the_admin(client, db):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_unknown_currency_filter_is_400(api, ledger, auditor):
    response = api.as_user(auditor).get("/api/v1/trial-balance/", {"currency": "XYZ"})
    assert_error(response, 400, "invalid")
