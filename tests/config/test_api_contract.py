"""The API does what its schema says, and only that (the whole schema is fuzzed by
tests/fuzz/test_schemathesis.py; these pin the mismatches found so far)."""

from decimal import Decimal

import pytest
import yaml
from django.urls import URLPattern, URLResolver, get_resolver

from finance import services
from finance.models import EntryStatus
from tests.conftest import line

VERBS = ("get", "post", "put", "patch", "delete")


def _viewset_routes(patterns=None):
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            yield from _viewset_routes(p.url_patterns)
        elif isinstance(p, URLPattern) and getattr(p.callback, "actions", None):
            yield p


def test_no_viewset_answers_a_verb_its_route_does_not_map():
    # A viewset method named after an HTTP verb (an action called `post`) answers that verb on
    # every route of the viewset, past the action's own permission.
    for pattern in _viewset_routes():
        cls, actions = pattern.callback.cls, pattern.callback.actions
        stray = [v for v in VERBS if v not in actions and hasattr(cls, v)]
        assert not stray, (cls.__name__, str(pattern.pattern), stray)


@pytest.fixture
def small_draft(ledger, clerk, settings):
    settings.LEDGER_APPROVAL_THRESHOLDS = {"*": Decimal("1000")}  # may be posted directly
    return services.journal_entry_create(
        entry_date=ledger.today,
        description="small",
        created_by=clerk,
        lines=[line(ledger.cash, "D", Decimal("5.00")), line(ledger.equity, "C", Decimal("5.00"))],
    )


def test_post_to_an_entry_is_405_not_a_posting(api, clerk, small_draft):
    assert not clerk.has_perm("finance.post_journalentry")
    response = api.as_user(clerk).post(f"/api/v1/entries/{small_draft.pk}/")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    small_draft.refresh_from_db()
    assert small_draft.status == EntryStatus.DRAFT and small_draft.number is None
    refused = api.as_user(clerk).post(f"/api/v1/entries/{small_draft.pk}/post/")
    assert refused.status_code == 403


def test_options_lists_only_the_methods_of_the_route(api, clerk, small_draft):
    response = api.as_user(clerk).options(f"/api/v1/entries/{small_draft.pk}/")
    assert response["Allow"] == "GET, PATCH, DELETE, HEAD, OPTIONS"


@pytest.fixture
def schema(client, db):
    return yaml.safe_load(client.get("/api/schema/").content)


def test_schema_documents_the_answers_as_given(schema):
    paths, components = schema["paths"], schema["components"]["schemas"]

    def ok(path, method="get", code="200"):
        return paths[path][method]["responses"][code]["content"]["application/json"]["schema"]

    assert ok("/api/v1/balances/") == {"$ref": "#/components/schemas/PaginatedBalanceList"}
    assert ok("/api/v1/trial-balance/") == {"$ref": "#/components/schemas/TrialBalance"}
    assert set(components["TrialBalance"]["properties"]) == {"as_of", "balanced", "totals", "rows"}
    assert "201" in paths["/api/v1/alerts/{id}/silence/"]["post"]["responses"]
    assert "200" not in paths["/api/v1/alerts/{id}/silence/"]["post"]["responses"]
    token = paths["/api/v1/auth/token/"]["post"]["responses"]["429"]
    assert "Retry-After" in token["headers"] and "content" in token
    assert "Retry-After" in paths["/api/v1/entries/"]["get"]["responses"]["503"]["headers"]
    assert components["Entry"]["properties"]["reversed_by"]["nullable"] is True
    assert components["CheckRun"]["properties"]["triggered_by"]["nullable"] is True
    assert components["AlertEvent"]["properties"]["actor"]["nullable"] is True
    assert components["DeadLetterEvent"]["properties"]["actor"]["nullable"] is True
    statement = components["PaginatedStatementLineList"]
    assert "opening_balance" in statement["required"]
    params = [p["name"] for p in paths["/api/v1/accounts/{id}/statement/"]["get"]["parameters"]]
    assert "is_control" not in params and "page_size" in params
    assert paths["/api/v1/entries/{id}/submit/"]["post"]["parameters"][0]["schema"]["type"] == (
        "integer"
    )


def test_only_json_bodies_are_documented(schema):
    for path in schema["paths"].values():
        for operation in path.values():
            if "requestBody" in operation:
                assert set(operation["requestBody"]["content"]) == {"application/json"}


def test_a_balance_page_as_documented(api, ledger, auditor):
    body = api.as_user(auditor).get("/api/v1/balances/?page_size=2").json()
    assert set(body) == {"count", "next", "previous", "results"} and len(body["results"]) == 2


def test_page_parameters_are_whole_numbers(api, auditor, db):
    client = api.as_user(auditor)
    for query in (
        "page_size=abc",
        "page_size=0",
        "page_size=-1",
        "page_size=\u0665",
        "page=1.5",
        "page=last",
        "page=-1",
    ):
        response = client.get(f"/api/v1/entries/?{query}")
        assert response.status_code == 400, (query, response.content)
        assert response.json()["error"]["code"] == "invalid"
    assert client.get("/api/v1/entries/?page_size=100000").status_code == 200  # cut to 500


def test_boolean_filters_take_true_or_false(api, admin_user, db):
    client = api.as_user(admin_user)
    assert client.get("/api/v1/accounts/?is_control=true").status_code == 200
    assert client.get("/api/v1/accounts/?is_control=").status_code == 200  # empty: no filter
    for bad in ("yes", "1", "True", "-58800"):
        response = client.get(f"/api/v1/accounts/?is_control={bad}")
        assert response.status_code == 400, bad


def test_text_and_booleans_are_json_strings_and_booleans(api, operator, db):
    client = api.as_user(operator)
    for body in ({"wait": 0}, {"wait": "yes"}, {"tags": [1]}):
        response = client.post("/api/v1/check-runs/", body, format="json")
        assert response.status_code == 400, (body, response.content)
    response = client.post(
        "/api/v1/silences/", {"reason": 0, "ends_at": "2999-01-01T00:00:00Z"}, format="json"
    )
    assert response.status_code == 400
    assert "reason" in response.json()["error"]["fields"]


def test_a_patched_line_without_an_account_is_a_rule_not_a_500(api, ledger, clerk, small_draft):
    response = api.as_user(clerk).patch(
        f"/api/v1/entries/{small_draft.pk}/",
        {"lines": [{"side": "D", "amount": "1.00"}, {"side": "C", "amount": "1.00"}]},
        format="json",
    )
    assert response.status_code in (400, 422), response.content
    small_draft.refresh_from_db()
    assert [ln.amount for ln in small_draft.lines.all()] == [Decimal("5.00")] * 2


def test_silence_windows_are_wall_clock_times(api, operator, db):
    client = api.as_user(operator)
    body = {
        "reason": "maintenance",
        "ends_at": "2999-01-01T00:00:00Z",
        "weekdays": "7",
        "window_start": "01:00",
        "window_end": "03:00",
        "timezone": "Europe/Berlin",
    }
    assert client.post("/api/v1/silences/", body, format="json").status_code == 201
    for bad in ("01:00Z", "01:00+05:00", "010000", "24:00", "1:00"):
        response = client.post("/api/v1/silences/", {**body, "window_start": bad}, format="json")
        assert response.status_code == 400, (bad, response.content)
        assert "window_start" in response.json()["error"]["fields"]
