"""Hostile input that used to reach a 500: ids that are not numbers, bodies that cannot be
parsed, unknown paths with unsafe methods, integers and ids that are not ASCII integers."""

import itertools
import json
import re

import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver

from alerts.models import Alert
from config.exceptions import csrf_failure
from config.parsers import MAX_DEPTH
from finance.models import Account, JournalEntry
from monitoring.models import ErrorEvent


@pytest.fixture(autouse=True)
def fresh_throttles():
    """The token endpoint's throttle counts in the cache, which outlives a test."""
    cache.clear()
    yield
    cache.clear()


def _api_routes(patterns=None, prefix=""):
    """Every URL pattern under /api/v1/, as (regex text, pattern)."""
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        text = prefix + str(p.pattern.regex.pattern).lstrip("^").rstrip("$").replace("\\Z", "")
        if isinstance(p, URLResolver):
            yield from _api_routes(p.url_patterns, text)
        elif isinstance(p, URLPattern) and text.startswith("api/v1/"):
            yield text, p


def _id_routes():
    """Each API route with an integer id in it, the id replaced by {id}."""
    routes = set()
    for text, _pattern in _api_routes():
        if "(?P<pk>" in text or "(?P<user_id>" in text:
            path = re.sub(r"\(\?P<(pk|user_id)>[^)]*\)", "{id}", text)
            path = re.sub(r"\(\?P<format>[^)]*\)", "", path).replace("\\.", ".")
            if "(?P<" not in path and not path.endswith("."):
                routes.add("/" + path.replace("\\/", "/"))
    return sorted(routes)


ID_ROUTES = _id_routes()


def test_every_id_route_is_found():
    # The enumeration above must see the action routes, or the test below proves nothing.
    assert "/api/v1/entries/{id}/submit/" in ID_ROUTES
    assert "/api/v1/check-findings/{id}/withdraw-explanation/" in ID_ROUTES
    assert "/api/v1/audit/users/{id}/activity/" in ID_ROUTES
    assert len(ID_ROUTES) >= 25


def test_non_numeric_ids_are_json_404_on_every_route(api, admin_user):
    client = api.as_user(admin_user)
    for route, bad_id in itertools.product(ID_ROUTES, ["abc", "1.5", "-1", "\u0661", "1e3", "%20"]):
        path = route.format(id=bad_id)
        for method in ("get", "post", "patch", "delete"):
            response = getattr(client, method)(path, {}, format="json")
            assert response.status_code == 404, (method, path, response.status_code)
            assert response.json()["error"]["code"] == "not_found"
    assert not ErrorEvent.objects.exists()
    assert not Alert.objects.exists()


@pytest.mark.parametrize("big_id", ["9223372036854775807", "9223372036854775808", "9" * 19])
def test_ids_past_a_bigint_are_404(api, clerk, big_id):
    client = api.as_user(clerk)
    for path in ("/api/v1/entries/{}/", "/api/v1/accounts/{}/balance/", "/api/v1/periods/{}/"):
        response = client.get(path.format(big_id))
        assert response.status_code == 404, (path, response.content)
    response = client.post(f"/api/v1/entries/{big_id}/submit/")
    assert response.status_code == 404
    assert not ErrorEvent.objects.exists()


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("path", ["/api/v1/auth/token/", "/api/v1/entries/"])
def test_deeply_nested_json_is_a_400_parse_error(api, clerk, path):
    client = api.as_user(clerk)
    for body in (_deep(1000), _deep(50_000), "[" * 1000, '{"a":' * 1000):
        response = client.post(path, body, content_type="application/json")
        assert response.status_code == 400, (path, body[:20], response.content)
        assert response.json()["error"]["code"] == "parse_error"
    assert not JournalEntry.objects.exists()
    assert not ErrorEvent.objects.exists()


def test_token_endpoint_refuses_deep_json_unauthenticated(db):
    response = Client().post("/api/v1/auth/token/", _deep(1000), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_nesting_limit_is_exact(api, clerk):
    client = api.as_user(clerk)
    inside = json.dumps({"username": "x", "password": "y", "name": _deep(1)})
    ok = client.post(
        "/api/v1/auth/token/",
        _deep(MAX_DEPTH - 1).replace("[]", f"[{inside}]", 1),
        content_type="application/json",
    )
    assert ok.status_code == 400 and ok.json()["error"]["code"] == "invalid"  # parsed: a list
    too_deep = client.post(
        "/api/v1/entries/", _deep(MAX_DEPTH + 1), content_type="application/json"
    )
    assert too_deep.json()["error"]["code"] == "parse_error"
    at_limit = client.post("/api/v1/entries/", _deep(MAX_DEPTH), content_type="application/json")
    assert at_limit.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "\\ud800", "password": "x"}',  # a lone surrogate
        b'{"\\udfff": 1}',
        b"\xff\xfe{}",  # not UTF-8
        b'{"username": "a", "password": NaN}',
        b"{" + b"1" * 5000 + b"}",
        b'{"a": ' + b"1" * 5000 + b"}",  # past Python's integer digit limit
    ],
)
def test_bodies_that_cannot_be_parsed_are_400(db, body):
    response = Client().post("/api/v1/auth/token/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "parse_error"


def test_other_media_types_are_415(api, clerk):
    response = api.as_user(clerk).post(
        "/api/v1/entries/", "a=b", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unknown_api_paths_are_json_404_for_unsafe_methods(db, clerk, method):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clerk)  # a session without a CSRF token
    response = getattr(client, method)("/api/v1/nope/", "{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_session_post_without_csrf_token_is_json_403(db, clerk, ledger):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clerk)
    response = client.post("/api/v1/entries/", "{}", content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "CSRF" in response.json()["error"]["message"]


def test_csrf_failure_view_answers_json_under_api_and_html_elsewhere():
    api = csrf_failure(RequestFactory().post("/api/v1/whatever/"), reason="CSRF cookie not set.")
    assert api.status_code == 403
    assert json.loads(api.content)["error"]["code"] == "permission_denied"
    page = csrf_failure(RequestFactory().post("/admin/login/"), reason="CSRF cookie not set.")
    assert page.status_code == 403 and b"<html" in page.content.lower()


def _entry(ledger, account=None, amount="1.00", **line):
    first = {"account": ledger.cash.pk if account is None else account, "side": "D"}
    return {
        "entry_date": ledger.today.isoformat(),
        "description": "strict",
        "lines": [
            {**first, "amount": amount, **line},
            {"account": ledger.equity.pk, "side": "C", "amount": amount},
        ],
    }


BAD_IDS = [1.5, 1.0, True, "\u0661", "\uff11", "1_0", " 1", "1 ", "+1", "0x1", 0, -1, 2**64]


def test_account_ids_are_integers_only(api, ledger, clerk):
    client = api.as_user(clerk)
    for account in BAD_IDS:
        response = client.post("/api/v1/entries/", _entry(ledger, account), format="json")
        assert response.status_code == 400, (account, response.content)
        assert "lines" in response.json()["error"]["fields"]
    assert not JournalEntry.objects.exists()


def test_account_ids_as_ascii_digit_strings_are_accepted(api, ledger, clerk):
    body = _entry(ledger, str(ledger.cash.pk))
    response = api.as_user(clerk).post("/api/v1/entries/", body, format="json")
    assert response.status_code == 201, response.content


BAD_AMOUNTS = [
    "\u0661\u0662",
    "\uff11\uff12",
    "1_000",
    "1e3",
    "1E3",
    " 12.50",
    "12.50 ",
    "+5",
    "12,50",
    ".5",
    "5.",
    "0x10",
    "NaN",
    "Infinity",
    "",
    "-",
    "1.2.3",
    12.5,
    True,
    None,
    [],
    {},
]


def test_amounts_are_plain_ascii_decimal_strings(api, ledger, clerk):
    client = api.as_user(clerk)
    for amount in BAD_AMOUNTS:
        response = client.post("/api/v1/entries/", _entry(ledger, amount=amount), format="json")
        assert response.status_code == 400, (amount, response.content)
        assert response.json()["error"]["code"] == "invalid"
    assert not JournalEntry.objects.exists()


BAD_QUERIES = [
    "/api/v1/accounts/?parent=\u0661",
    "/api/v1/accounts/?parent=1.5",
    "/api/v1/accounts/?parent=true",
    "/api/v1/entries/?account=\u0661",
    "/api/v1/entries/?account=1.5",
    "/api/v1/entries/?fiscal_year=2026.5",
    "/api/v1/entries/?number=\uff11",
    "/api/v1/entries/?period=1_0",
    "/api/v1/entries/?created_by=+1",
    "/api/v1/periods/?fiscal_year=1e3",
    "/api/v1/check-findings/?run=\u0661",
    "/api/v1/audit/events/?actor=\u0661",
    "/api/v1/audit/events/?actor=1.0",
    "/api/v1/audit/export/?from_id=1_000",
    "/api/v1/entries/?account=99999999999999999999",
]


def test_query_filters_take_ascii_integers_only(api, ledger, auditor):
    client = api.as_user(auditor)
    for query in BAD_QUERIES:
        response = client.get(query)
        assert response.status_code == 400, (query, response.status_code, response.content)
        assert response.json()["error"]["code"] == "invalid"


def test_query_filters_still_take_plain_ids(api, ledger, admin_user):
    client = api.as_user(admin_user)
    assert client.get(f"/api/v1/accounts/?parent={ledger.cash.pk}").status_code == 200
    assert client.get(f"/api/v1/entries/?account={ledger.cash.pk}").status_code == 200
    assert client.get(f"/api/v1/entries/?fiscal_year={ledger.today.year}").status_code == 200
    assert Account.objects.exists()
