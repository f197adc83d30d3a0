"""Request rates per client, counted in the shared database cache: anonymous and authenticated
API clients, and a stricter budget for password logins shared by the token endpoint and the
admin login. Throttled answers are 429 with Retry-After in the error shape, and the count holds
across separate server processes."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from config.models import ApiToken
from tests.e2e.test_scheduler import test_database_url
from tests.factories import PASSWORD
from tests.receivers import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "/api/v1/auth/token/"
DATABASE_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "ledgerguard_cache",
    }
}


def _rates(settings, **rates: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "", "user": "", "login": "", **rates},
    }


@pytest.fixture
def shared_cache(settings, db):
    """The production default: the database cache, its table made as migrate makes it."""
    settings.CACHES = DATABASE_CACHE
    call_command("createcachetable", verbosity=0)
    cache.clear()
    yield
    cache.clear()


def _cached_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM ledgerguard_cache")
        return cursor.fetchone()[0]


def _assert_throttled(response) -> None:
    assert response.status_code == 429, response.content
    assert response.json()["error"]["code"] == "throttled"
    assert set(response.json()["error"]) == {"code", "message", "fields"}
    assert 1 <= int(response["Retry-After"]) <= 60


def test_an_authenticated_client_is_throttled_per_user(shared_cache, settings, clerk, auditor):
    _rates(settings, user="3/min")
    clerk_api, auditor_api = APIClient(), APIClient()
    clerk_api.force_authenticate(clerk)
    auditor_api.force_authenticate(auditor)
    assert [clerk_api.get("/api/v1/auth/tokens/").status_code for _ in range(3)] == [200] * 3
    _assert_throttled(clerk_api.get("/api/v1/auth/tokens/"))
    assert auditor_api.get("/api/v1/auth/tokens/").status_code == 200  # their own count
    assert _cached_rows() >= 2  # counted in the shared table, not in this process


def test_an_anonymous_client_is_throttled_by_address(shared_cache, settings, clerk):
    _rates(settings, anon="2/min")
    body = {"username": "clerk", "password": PASSWORD}
    client = APIClient(REMOTE_ADDR="198.51.100.1")
    assert [client.post(TOKEN, body).status_code for _ in range(2)] == [201, 201]
    _assert_throttled(client.post(TOKEN, body))
    assert APIClient(REMOTE_ADDR="198.51.100.2").post(TOKEN, body).status_code == 201


def test_token_and_admin_logins_share_one_budget_per_address(shared_cache, settings, clerk):
    _rates(settings, login="3/min")
    body = {"username": "clerk", "password": PASSWORD}
    api = APIClient(REMOTE_ADDR="198.51.100.1")
    browser = Client(REMOTE_ADDR="198.51.100.1")
    assert api.post(TOKEN, body).status_code == 201
    assert browser.post("/admin/login/", body).status_code == 302
    assert api.post(TOKEN, body).status_code == 201
    refused = browser.post("/admin/login/", body)
    assert refused.status_code == 429 and b"Too many login attempts" in refused.content
    assert 1 <= int(refused["Retry-After"]) <= 60
    _assert_throttled(api.post(TOKEN, body))
    assert Client(REMOTE_ADDR="198.51.100.1").get("/admin/login/").status_code == 200  # the form
    assert ApiToken.objects.count() == 2  # nothing issued while throttled


def test_a_forged_forwarded_for_does_not_dodge_the_throttle(shared_cache, settings, clerk):
    _rates(settings, login="2/min")
    body = {"username": "clerk", "password": "wrong-password-here"}
    statuses = [
        APIClient(REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
        .post(TOKEN, body)
        .status_code
        for n in range(4)
    ]
    assert statuses == [401, 401, 429, 429]


def test_the_login_budget_throttles_many_usernames(shared_cache, settings, make_user):
    """Spraying one password over many usernames is slowed per address; django-axes alone
    counts per username."""
    _rates(settings, login="5/min")
    api = APIClient(REMOTE_ADDR="198.51.100.9")
    statuses = [
        api.post(TOKEN, {"username": f"someone{n}", "password": "Winter2026!"}).status_code
        for n in range(8)
    ]
    assert statuses == [401] * 5 + [429] * 3


def test_migrate_makes_the_cache_table(tmp_path):
    database = tmp_path / "fresh.sqlite3"
    env = {k: v for k, v in os.environ.items() if k != "CACHE_URL"}  # the production default
    env["DATABASE_URL"] = f"sqlite:///{database}"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "ledgerguard_cache" in tables


# Two processes -------------------------------------------------------------------------------


def _post(url: str, body: dict) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def _start_server(stack: ExitStack, tmp_path: Path, name: str) -> str:
    """One gunicorn (one worker) on the test database, as a separate host would run it."""
    env = os.environ | {
        "DATABASE_URL": test_database_url(),
        "CACHE_URL": "dbcache://ledgerguard_cache",
        "THROTTLE_LOGIN_RATE": "5/min",
        "THROTTLE_ANON_RATE": "",
        "DEBUG": "0",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"prometheus-{name}"),
    }
    port = free_port()
    log = stack.enter_context((tmp_path / f"{name}.log").open("w+"))
    command = f"-m gunicorn --config gunicorn.conf.py --bind 127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, *command.split()],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )

    def stop() -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.seek(0)
        print(name, log.read()[-3000:])  # shown when the test failed

    stack.callback(stop)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, f"{name} exited early"
        try:
            urllib.request.urlopen(f"{base}/health/live", timeout=5).close()
            return base
        except urllib.error.HTTPError:
            return base
        except OSError:
            assert time.monotonic() < deadline, f"{name} did not answer within 30 s"
            time.sleep(0.1)


@pytest.mark.e2e
def test_two_server_processes_count_logins_together(tmp_path, transactional_db, settings, clerk):
    settings.CACHES = DATABASE_CACHE
    call_command("createcachetable", verbosity=0)
    cache.clear()
    body = {"username": "clerk", "password": PASSWORD}
    with ExitStack() as stack:
        first = _start_server(stack, tmp_path, "first")
        second = _start_server(stack, tmp_path, "second")
        answers = [_post(f"{base}{TOKEN}", body) for base in [first, second] * 3]
    cache.clear()
    # Five logins in all, whichever process took them; each process alone would allow five.
    assert [status for status, _, _ in answers] == [201] * 5 + [429]
    _, headers, error = answers[-1]
    assert error["error"]["code"] == "throttled"
    assert 1 <= int(headers["Retry-After"]) <= 60
