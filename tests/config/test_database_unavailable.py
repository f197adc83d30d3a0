"""A database that cannot be reached is a 503 with its own code and Retry-After, wherever in
the request it shows (authentication, sessions, a view), never a generic 500."""

import socket
from contextlib import contextmanager
from decimal import Decimal

import psycopg
import pytest
from django.core.cache import cache
from django.db import OperationalError, connection
from django.test import Client

from config.tokens import api_token_create
from finance import services
from tests.conftest import line
from tests.finance.faults import BALANCE_LOCK, statement_fault


@pytest.fixture(autouse=True)
def fresh_throttles():
    """The token endpoint's throttle counts in the cache, which outlives a test."""
    cache.clear()
    yield
    cache.clear()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def database_settings(**changes):
    """Point Django's connection elsewhere for the block (it reconnects with these settings)."""
    saved = {key: connection.settings_dict.get(key) for key in changes}
    connection.close()
    connection.settings_dict.update(changes)
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


@pytest.fixture
def clients(transactional_db, clerk):
    _token, raw = api_token_create(user=clerk, name="t", ttl_days=1, actor=clerk)
    bearer = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {raw}")
    session = Client(raise_request_exception=False)
    session.force_login(clerk)
    return {
        "bearer": bearer,
        "session": session,
        "anonymous": Client(raise_request_exception=False),
    }


def assert_unavailable_everywhere(clients):
    requests = [
        ("bearer", "get", "/api/v1/accounts/"),
        ("bearer", "post", "/api/v1/entries/"),
        ("session", "get", "/api/v1/entries/"),
        ("anonymous", "post", "/api/v1/auth/token/"),
    ]
    for who, method, path in requests:
        client = clients[who]
        if method == "get":
            response = client.get(path)
        else:
            body = {"username": "clerk", "password": "x"} if who == "anonymous" else {}
            response = client.post(path, body, content_type="application/json")
        assert response.status_code == 503, (who, method, path, response.content[:300])
        assert response.json()["error"]["code"] == "database.unavailable"
        assert int(response["Retry-After"]) > 0
    page = clients["session"].get("/admin/")
    assert page.status_code == 503
    assert page["Content-Type"].startswith("text/html") and b"try again" in page.content
    assert int(page["Retry-After"]) > 0


@pytest.mark.postgres
def test_refused_connection_is_503_on_postgresql(clients):
    with database_settings(HOST="127.0.0.1", PORT=str(_closed_port())):
        assert_unavailable_everywhere(clients)
    assert clients["bearer"].get("/api/v1/accounts/").status_code == 200  # back once it is


@pytest.mark.postgres
def test_backend_terminated_mid_session_is_503_on_postgresql(clients):
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    try:
        for who, path in (("bearer", "/api/v1/accounts/"), ("session", "/admin/")):
            connection.ensure_connection()
            pid = connection.connection.info.backend_pid
            with psycopg.connect(**params, autocommit=True) as killer:
                killer.execute("SELECT pg_terminate_backend(%s)", [pid])
            response = clients[who].get(path)
            assert response.status_code == 503, (who, response.content[:300])
            assert int(response["Retry-After"]) > 0
            connection.close()
    finally:
        connection.close()


def test_unopenable_database_file_is_503_on_sqlite(clients, tmp_path):
    if connection.features.guard_dialect != "sqlite":
        pytest.skip("SQLite's database file")
    with database_settings(NAME=str(tmp_path / "gone" / "ledger.sqlite3")):
        assert_unavailable_everywhere(clients)
    assert clients["bearer"].get("/api/v1/accounts/").status_code == 200


class SerializationFailure(OperationalError):
    sqlstate = "40001"


def test_operation_unavailable_tells_the_client_when_to_retry(
    api, ledger, clerk, approver, settings
):
    settings.OPERATION_MAX_ATTEMPTS = 2
    settings.OPERATION_RETRY_BASE_SECONDS = 0
    entry = services.journal_entry_create(
        entry_date=ledger.today,
        description="Rent",
        created_by=clerk,
        lines=[
            line(ledger.cash, "D", Decimal("40.00")),
            line(ledger.equity, "C", Decimal("40.00")),
        ],
    )
    services.journal_entry_submit(entry=entry, actor=clerk)

    # Every attempt's posting meets a contended balance row.
    with statement_fault(BALANCE_LOCK, lambda: SerializationFailure("could not serialize access")):
        response = api.as_user(approver).post(f"/api/v1/entries/{entry.pk}/approve/")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "operation.unavailable"
    assert int(response["Retry-After"]) > 0
