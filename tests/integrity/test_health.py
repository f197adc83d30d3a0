"""/health/live and /health/ready: what probes, load balancers and staff see."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import django
import health_check
import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client

from alerts.models import Heartbeat
from audit.models import AuditEvent

COMPONENTS = {"database", "migrations", "cache", "scheduler", "schedules", "storage"}
PROJECT = Path(__file__).resolve().parents[2]


def unapply_newest_migration(app: str = "alerts") -> None:
    MigrationRecorder(connection).migration_qs.filter(app=app).latest("id").delete()


def unwritable_backup_dir(settings, tmp_path) -> None:
    """A path under a regular file: not writable even for root."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.BACKUP_DIR = blocker / "backups"


@pytest.fixture
def broken(db, settings, tmp_path):
    """Three components failing or warning: migrations, scheduler (no beat), storage."""
    Heartbeat.objects.all().delete()
    unapply_newest_migration()
    unwritable_backup_dir(settings, tmp_path)


def statuses(body: dict) -> dict[str, str]:
    return {name: check["status"] for name, check in body["checks"].items()}


@pytest.mark.parametrize("path", ["/health/live", "/health/live/"])
def test_live_is_ok_without_any_query(client, db, django_assert_num_queries, path):
    with django_assert_num_queries(0):
        response = client.get(path)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {}}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.parametrize("path", ["/health/ready", "/health/ready/"])
def test_ready_is_ok_when_every_component_is(client, beat, backup_dir, path):
    beat()

    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok"
    assert statuses(body) == dict.fromkeys(COMPONENTS, "ok")
    for check in body["checks"].values():
        assert set(check) == {"status", "time_ms"}
        assert isinstance(check["time_ms"], float) and check["time_ms"] >= 0
    assert list(backup_dir.iterdir()) == []  # the probe file is gone again


@pytest.mark.parametrize("age", [10_000, None], ids=["stale", "missing"])
def test_dead_scheduler_degrades_readiness_without_failing_it(client, beat, age):
    if age is None:
        Heartbeat.objects.all().delete()
    else:
        beat(age)

    response = client.get("/health/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert statuses(body) == {**dict.fromkeys(COMPONENTS, "ok"), "scheduler": "warn"}


@pytest.mark.parametrize("age", [10_000, None], ids=["stale", "missing"])
def test_dead_scheduler_fails_readiness_when_required(client, beat, settings, age):
    settings.HEALTH_READY_REQUIRE_SCHEDULER = True
    if age is None:
        Heartbeat.objects.all().delete()
    else:
        beat(age)

    response = client.get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert statuses(body) == {**dict.fromkeys(COMPONENTS, "ok"), "scheduler": "fail"}


def test_required_scheduler_with_a_fresh_beat_is_ok(client, beat, settings):
    settings.HEALTH_READY_REQUIRE_SCHEDULER = True
    beat(5)

    response = client.get("/health/ready")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_unapplied_migration_fails_readiness(client, beat):
    beat()
    unapply_newest_migration()

    response = client.get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert statuses(body) == {**dict.fromkeys(COMPONENTS, "ok"), "migrations": "fail"}


def test_unwritable_backup_dir_fails_readiness(client, beat, settings, tmp_path):
    beat()
    unwritable_backup_dir(settings, tmp_path)

    response = client.get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert statuses(body) == {**dict.fromkeys(COMPONENTS, "ok"), "storage": "fail"}


def test_anonymous_callers_get_no_messages_versions_or_paths(client, broken, tmp_path):
    response = client.get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert statuses(body) == {
        "database": "ok",
        "migrations": "fail",
        "cache": "ok",
        "scheduler": "warn",
        "schedules": "ok",
        "storage": "fail",
    }
    assert set(body) == {"status", "checks"}
    for check in body["checks"].values():
        assert set(check) == {"status", "time_ms"}
    text = response.content.decode()
    for leak in (
        str(tmp_path),
        "not-a-directory",
        django.get_version(),
        health_check.__version__,
        platform.python_version(),
        "alerts",
        "unapplied",
        "Traceback",
    ):
        assert leak not in text


def test_staff_session_sees_the_failing_components_messages(client, broken, admin_user):
    client.force_login(admin_user)

    checks = client.get("/health/ready").json()["checks"]

    assert "message" not in checks["database"]
    assert "message" not in checks["cache"]
    assert checks["migrations"]["message"] == "1 unapplied migration(s)"
    assert checks["scheduler"]["message"] == "No scheduler heartbeat recorded yet"
    assert checks["storage"]["message"].startswith("Backup storage is not writable")


def test_staff_sees_how_old_a_stale_heartbeat_is(client, beat, admin_user, settings):
    beat(600)
    client.force_login(admin_user)

    scheduler = client.get("/health/ready").json()["checks"]["scheduler"]

    assert scheduler == {
        "status": "warn",
        "time_ms": scheduler["time_ms"],
        "message": f"Last scheduler heartbeat 600 s ago "
        f"(limit {settings.ALERT_HEARTBEAT_MAX_AGE_SECONDS} s)",
    }


def test_non_staff_session_sees_no_messages(client, broken, make_user):
    client.force_login(make_user("operator", username="floor", is_staff=False))

    checks = client.get("/health/ready").json()["checks"]

    assert all(set(check) == {"status", "time_ms"} for check in checks.values())


@pytest.mark.parametrize("path", ["/health/live", "/health/ready"])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_other_methods_are_refused_as_json(db, path, method):
    client = Client(enforce_csrf_checks=True)  # as a real POST arrives: no CSRF cookie
    response = getattr(client, method)(path)

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/health/live", "/health/ready"])
def test_head_is_answered(client, beat, path):
    beat()

    response = client.head(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "accept", ["text/html", "text/plain", "application/xml", "application/openmetrics-text"]
)
def test_answer_is_json_whatever_the_accept_header(client, beat, accept):
    beat()

    response = client.get("/health/ready?format=html", headers={"Accept": accept})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["status"] == "ok"


def test_health_is_not_redirected_to_https(db, settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()  # its middleware is built with the setting above

    assert client.get("/admin/").status_code == 301
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code in (200, 503)


def test_probes_are_not_audited(client, beat):
    beat()
    before = AuditEvent.objects.count()

    for _ in range(3):
        client.get("/health/live")
        client.get("/health/ready")
        client.post("/health/ready")

    assert AuditEvent.objects.count() == before


LOST_DATABASE = "postgres://ledgerguard:x@127.0.0.1:1/nowhere"
PROBE = """
import json
import tests.envdefaults  # the test-only SECRET_KEY and friends, as under pytest
import django
django.setup()
from django.test import Client
client = Client(headers={"Host": "localhost"})
for path in ("/health/live", "/health/ready"):
    response = client.get(path)
    print(json.dumps({"path": path, "status": response.status_code, "body": response.json()}))
"""


def test_lost_database_fails_readiness_but_not_liveness(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": LOST_DATABASE,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "BACKUP_DIR": str(tmp_path / "backups"),
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    live, ready = (json.loads(line) for line in result.stdout.splitlines())
    assert live == {"path": "/health/live", "status": 200, "body": {"status": "ok", "checks": {}}}
    assert ready["status"] == 503
    assert ready["body"]["status"] == "fail"
    checks = statuses(ready["body"])
    assert checks["database"] == "fail"
    assert checks["migrations"] == "fail"
    assert checks["cache"] == "ok"
    assert checks["storage"] == "ok"
    assert all(set(check) == {"status", "time_ms"} for check in ready["body"]["checks"].values())
    for leak in ("127.0.0.1", "nowhere", "ledgerguard", "postgres"):
        assert leak not in result.stdout
