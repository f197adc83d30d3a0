"""The backups API (docs/backups.md, "API and admin") against every role, the real work behind
it (a backup taken and verified, a drill run, a download streamed), and hostile requests: every
answer in the documented error shape (docs/api.md), never a 500."""

import hashlib
from pathlib import Path

import pytest
from django.utils.module_loading import import_string
from django_q.conf import Conf
from django_q.models import OrmQ, Success
from rest_framework.test import APIClient

from alerts.models import Alert
from audit.models import AuditEvent
from backups import services
from backups.exceptions import BackupFailed
from backups.models import Backup, BackupStatus, RestoreDrill
from monitoring.models import ErrorEvent
from tests.backups.factories import BackupFactory, RestoreDrillFactory
from tests.conftest import ROLES

AU, OP, AD = "auditor", "operator", "admin"
READERS = {AU, OP, AD}
OPERATORS = {OP, AD}

# (method, path, roles allowed, the status an allowed role gets) as docs/backups.md lists them.
ENDPOINTS = [
    ("get", "/api/v1/backups/", READERS, 200),
    ("get", "/api/v1/backups/{backup}/", READERS, 200),
    ("post", "/api/v1/backups/", OPERATORS, 202),
    ("post", "/api/v1/backups/{backup}/verify/", OPERATORS, 202),
    ("post", "/api/v1/backups/{backup}/drill/", OPERATORS, 202),
    ("get", "/api/v1/backups/{backup}/download/", {AD}, 200),
    ("get", "/api/v1/drills/", READERS, 200),
    ("get", "/api/v1/drills/{drill}/", READERS, 200),
]


def error_code(response) -> str:
    """The documented error shape, and its code."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert isinstance(body["error"]["fields"], dict)
    return body["error"]["code"]


def firing(key: str) -> Alert | None:
    return Alert.objects.filter(source="backups", key=key, state="firing").first()


def run_queued(func: str) -> None:
    """Run what the request queued for a worker, as the worker would: the function named in
    the queued package, with its arguments; the package leaves the queue."""
    queued = [q for q in OrmQ.objects.order_by("id") if q.task["func"] == func]
    assert len(queued) == 1, [q.task["func"] for q in OrmQ.objects.all()]
    task = queued[0].task
    queued[0].delete()
    import_string(func)(*task["args"], **task["kwargs"])


def stored_bytes(backup_dir: Path, backup: Backup) -> bytes:
    return (Path(backup_dir) / backup.location).read_bytes()


@pytest.fixture
def books(ledger, post):
    """A small book: three posted entries."""
    for amount in ("100.00", "250.50", "75.25"):
        post(ledger.cash, ledger.revenue, amount)
    return ledger


# --- every endpoint against every role -------------------------------------------------------


@pytest.fixture
def rows(db, backup_dir):
    """A stored-looking backup (an object of a few bytes at its location, its SHA-256 on the
    row) and a drill of it: enough for every endpoint to answer without a real backup."""
    data = b"not a real backup, but stored"
    backup = BackupFactory(
        status=BackupStatus.COMPLETED,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
    )
    path = Path(backup_dir) / backup.location
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"backup": backup.pk, "drill": RestoreDrillFactory(backup=backup).pk}


@pytest.mark.parametrize("role", [*ROLES, "anonymous"])
@pytest.mark.parametrize(("method", "template", "allowed", "ok"), ENDPOINTS)
def test_each_endpoint_answers_each_role_as_documented(
    api, make_user, rows, role, method, template, allowed, ok
):
    client = api if role == "anonymous" else api.as_user(make_user(role))
    backups_before = Backup.objects.count()
    response = getattr(client, method)(template.format(**rows))
    if role == "anonymous":
        assert response.status_code == 401
        assert error_code(response) == "auth.not_authenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")
    elif role in allowed:
        assert response.status_code == ok, (role, template, response.content[:300])
    else:
        assert response.status_code == 403, (role, template, response.status_code)
        assert error_code(response) == "permission_denied"
    if response.status_code >= 400:
        # A refused request changes nothing and leaves no trace of the work it asked for.
        assert Backup.objects.count() == backups_before
        assert not AuditEvent.objects.filter(action__in=["backup.downloaded", "backup.started"])


def test_lists_and_details_show_the_measurements(api, auditor, rows):
    client = api.as_user(auditor)
    listed = client.get("/api/v1/backups/").json()
    backup = listed["results"][0] if "results" in listed else listed[0]
    assert backup["id"] == rows["backup"] and backup["status"] == "completed"
    assert {"sha256", "size_bytes", "row_counts", "audit_head", "verification_error"} <= set(backup)
    drill = client.get(f"/api/v1/drills/{rows['drill']}/").json()
    assert drill["backup"] == rows["backup"] and drill["restore_seconds"] == 1.0
    filtered = client.get("/api/v1/drills/", {"backup": rows["backup"]}).json()
    assert [d["id"] for d in filtered.get("results", filtered)] == [rows["drill"]]


# --- the work behind the endpoints -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_operator_takes_a_backup_a_worker_takes_and_verifies_it(api, operator, books):
    client = api.as_user(operator)
    response = client.post("/api/v1/backups/")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "running" and body["trigger"] == "api"
    assert body["created_by"] == "operator"
    assert response["Location"].endswith(f"/api/v1/backups/{body['id']}/")
    assert client.get(response["Location"]).json()["id"] == body["id"]

    run_queued("backups.tasks.backup_and_verify")
    backup = Backup.objects.get(pk=body["id"])
    assert backup.status == BackupStatus.VERIFIED and backup.verified_at
    assert backup.row_counts["finance_journalentry"] == 3
    shown = client.get(f"/api/v1/backups/{backup.pk}/").json()
    assert shown["status"] == "verified" and shown["sha256"] == backup.sha256
    events = AuditEvent.objects.filter(object_id=str(backup.pk), action__startswith="backup.")
    assert set(events.values_list("action", flat=True)) == {
        "backup.started",
        "backup.completed",
        "backup.verified",
    }
    assert events.get(action="backup.started").actor_id == operator.pk


@pytest.mark.django_db(transaction=True)
def test_in_django_q_sync_mode_the_backup_is_verified_when_the_request_returns(
    api, admin_user, books, monkeypatch
):
    monkeypatch.setattr(Conf, "SYNC", True)
    response = api.as_user(admin_user).post("/api/v1/backups/")
    assert response.status_code == 202
    backup = Backup.objects.get(pk=response.json()["id"])
    assert backup.status == BackupStatus.VERIFIED, backup.error
    assert Success.objects.filter(name=f"backup-{backup.pk}").exists()


@pytest.mark.django_db(transaction=True)
def test_verify_is_queued_and_a_worker_verifies(api, operator, books):
    backup = services.backup_create()
    client = api.as_user(operator)
    response = client.post(f"/api/v1/backups/{backup.pk}/verify/")
    assert response.status_code == 202
    assert response.json()["status"] == "completed"  # not yet: a worker re-reads the object
    assert response["Location"].endswith(f"/api/v1/backups/{backup.pk}/")
    requested = AuditEvent.objects.get(action="backup.verify_requested", object_id=str(backup.pk))
    assert requested.actor_id == operator.pk

    run_queued("backups.tasks.verify")
    shown = client.get(response["Location"]).json()
    assert shown["status"] == "verified" and shown["verified_at"]
    verified = AuditEvent.objects.get(action="backup.verified", object_id=str(backup.pk))
    assert verified.actor_id == operator.pk  # the worker records it as the operator's


@pytest.mark.django_db(transaction=True)
def test_verify_of_a_deleted_object_marks_it_unverified_and_alerts(
    api, operator, books, backup_dir
):
    backup = services.backup_create()
    (Path(backup_dir) / backup.location).unlink()
    client = api.as_user(operator)
    assert client.post(f"/api/v1/backups/{backup.pk}/verify/").status_code == 202
    with pytest.raises(BackupFailed):
        run_queued("backups.tasks.verify")  # the task fails, as django-q2 records it
    body = client.get(f"/api/v1/backups/{backup.pk}/").json()
    assert body["status"] == "unverified"
    assert body["verification_error"].startswith("verify: ")
    assert backup.location in body["verification_error"]
    alert = firing("verification_failed")
    assert alert is not None and str(backup.pk) in alert.title
    # The next passing verification resolves it.
    good = services.backup_create()
    assert client.post(f"/api/v1/backups/{good.pk}/verify/").status_code == 202
    run_queued("backups.tasks.verify")
    assert client.get(f"/api/v1/backups/{good.pk}/").json()["status"] == "verified"
    assert firing("verification_failed") is None


@pytest.mark.django_db(transaction=True)
def test_operator_starts_a_drill_and_a_worker_runs_it(api, operator, books):
    backup = services.backup_verify(backup=services.backup_create())
    client = api.as_user(operator)
    response = client.post(f"/api/v1/backups/{backup.pk}/drill/")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "running" and body["backup"] == backup.pk
    assert response["Location"].endswith(f"/api/v1/drills/{body['id']}/")

    run_queued("backups.tasks.restore_drill")
    drill = client.get(response["Location"]).json()
    assert drill["status"] == "passed", drill["error"]
    assert drill["restore_seconds"] > 0 and drill["recovery_point_seconds"] >= 0
    assert drill["created_by"] == "operator" and drill["trigger"] == "api"
    actions = AuditEvent.objects.filter(object_id=str(backup.pk)).values_list("action", flat=True)
    assert {"backup.drill_started", "backup.drill_passed"} <= set(actions)


@pytest.mark.django_db(transaction=True)
def test_admin_downloads_exactly_the_stored_object(api, admin_user, books, backup_dir):
    backup = services.backup_create()
    response = api.as_user(admin_user).get(f"/api/v1/backups/{backup.pk}/download/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    name = backup.location.rsplit("/", 1)[-1]
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    data = b"".join(response.streaming_content)
    assert len(data) == backup.size_bytes
    assert hashlib.sha256(data).hexdigest() == backup.sha256
    assert data == stored_bytes(backup_dir, backup)
    event = AuditEvent.objects.get(action="backup.downloaded")
    assert event.object_id == str(backup.pk) and event.actor_id == admin_user.pk


@pytest.mark.django_db(transaction=True)
def test_operator_may_not_download(api, operator, books):
    backup = services.backup_create()
    response = api.as_user(operator).get(f"/api/v1/backups/{backup.pk}/download/")
    assert response.status_code == 403 and error_code(response) == "permission_denied"
    assert not AuditEvent.objects.filter(action="backup.downloaded").exists()


@pytest.mark.parametrize(
    "status", [BackupStatus.FAILED, BackupStatus.PRUNED, BackupStatus.RUNNING, "object gone"]
)
def test_a_backup_without_a_stored_object_is_not_restorable(api, admin_user, status, rows):
    if status == "object gone":
        backup = Backup.objects.get(pk=rows["backup"])
        backup.location = "2026/12/never-stored.lgb"
        backup.save()
    else:
        backup = BackupFactory(status=status)
    client = api.as_user(admin_user)
    response = client.get(f"/api/v1/backups/{backup.pk}/download/")
    assert response.status_code == 409
    assert error_code(response) == "backup.not_restorable"
    assert not AuditEvent.objects.filter(action="backup.downloaded").exists()
    if status != "object gone":
        for action in ("verify", "drill"):
            response = client.post(f"/api/v1/backups/{backup.pk}/{action}/")
            assert response.status_code == 409, (action, response.content)
            assert error_code(response) == "backup.not_restorable"
        assert not RestoreDrill.objects.filter(backup=backup).exists()
        backup.refresh_from_db()
        assert backup.status == status


# --- hostile requests ------------------------------------------------------------------------

ID_PATHS = [
    ("get", "/api/v1/backups/{}/"),
    ("post", "/api/v1/backups/{}/verify/"),
    ("post", "/api/v1/backups/{}/drill/"),
    ("get", "/api/v1/backups/{}/download/"),
    ("get", "/api/v1/drills/{}/"),
]
HOSTILE_IDS = [
    "abc",
    "1.5",
    "-1",
    "0",
    "1e3",
    "%20",
    "\u0661",
    "99999",
    "9223372036854775807",
    "9223372036854775808",
    "9" * 19,
    "9" * 40,
    "1;DROP TABLE backups_backup",
    "..%2F..%2Fetc%2Fpasswd",
]


@pytest.mark.parametrize("bad_id", HOSTILE_IDS)
def test_hostile_ids_are_json_404(api, admin_user, rows, bad_id):
    client = api.as_user(admin_user)
    for method, template in ID_PATHS:
        response = getattr(client, method)(template.format(bad_id))
        assert response.status_code == 404, (method, template, bad_id, response.status_code)
        assert error_code(response) == "not_found"
    assert not ErrorEvent.objects.exists()
    assert not RestoreDrill.objects.exclude(pk=rows["drill"]).exists()
    assert not AuditEvent.objects.filter(action__startswith="backup.").exists()


WRONG_METHODS = [
    ("put", "/api/v1/backups/"),
    ("patch", "/api/v1/backups/"),
    ("delete", "/api/v1/backups/"),
    ("put", "/api/v1/backups/{backup}/"),
    ("patch", "/api/v1/backups/{backup}/"),
    ("delete", "/api/v1/backups/{backup}/"),
    ("post", "/api/v1/backups/{backup}/"),
    ("get", "/api/v1/backups/{backup}/verify/"),
    ("delete", "/api/v1/backups/{backup}/verify/"),
    ("get", "/api/v1/backups/{backup}/drill/"),
    ("post", "/api/v1/backups/{backup}/download/"),
    ("delete", "/api/v1/backups/{backup}/download/"),
    ("post", "/api/v1/drills/"),
    ("put", "/api/v1/drills/{drill}/"),
    ("delete", "/api/v1/drills/{drill}/"),
]


@pytest.mark.parametrize(("method", "template"), WRONG_METHODS)
def test_wrong_methods_are_refused_in_the_error_shape(api, admin_user, rows, method, template):
    """A 405 where the user holds the permissions the method would need; before that, the
    project's model permissions answer 403 for a method that needs one nobody holds
    (backups.change_backup, backups.add_restoredrill, ...), as on every read-only route."""
    response = getattr(api.as_user(admin_user), method)(template.format(**rows), {}, format="json")
    code = error_code(response)
    assert (response.status_code, code) in [
        (405, "method_not_allowed"),
        (403, "permission_denied"),
    ], response.content
    if response.status_code == 405:
        assert method.upper() not in response["Allow"]
    assert Backup.objects.count() == 1 and RestoreDrill.objects.count() == 1
    backup = Backup.objects.get()
    assert backup.status == BackupStatus.COMPLETED


def test_a_body_on_a_post_is_ignored(api, operator, rows):
    """The POSTs take no body (the schema says so): one sent is not read, and chooses
    nothing (not the engine, not the trigger, not who asked)."""
    client = api.as_user(operator)
    sent = {"engine": "pgbackrest", "trigger": "schedule", "status": "verified", "created_by": 1}
    response = client.post("/api/v1/backups/", sent, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "running" and body["trigger"] == "api"
    assert body["engine"] != "pgbackrest" and body["created_by"] == "operator"
    response = client.post(f"/api/v1/backups/{rows['backup']}/drill/", sent, format="json")
    assert response.status_code == 202 and response.json()["status"] == "running"


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [
        ("application/json", b"{not json"),
        ("application/json", b"[" * 100 + b"]" * 100),
        ("text/plain", b"hello"),
        ("application/x-www-form-urlencoded", b"engine=pgbackrest"),
        ("application/json", b"\xff\xfe"),
    ],
)
def test_odd_bodies_never_make_a_500(api, operator, rows, content_type, payload):
    client = api.as_user(operator)
    paths = [
        "/api/v1/backups/",
        f"/api/v1/backups/{rows['backup']}/verify/",
        f"/api/v1/backups/{rows['backup']}/drill/",
    ]
    for path in paths:
        response = client.generic("POST", path, payload, content_type=content_type)
        assert response.status_code < 500, (path, response.content)
        if response.status_code >= 400:
            error_code(response)
    assert not ErrorEvent.objects.exists()


def test_a_session_post_without_its_csrf_token_is_refused(operator, rows):
    """A page on another site cannot make an operator's browser take a backup or start a
    drill: session writes need the CSRF token."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(operator)
    for path in ("/api/v1/backups/", f"/api/v1/backups/{rows['backup']}/drill/"):
        response = client.post(path)
        assert response.status_code == 403 and error_code(response) == "permission_denied"
        assert response.json()["error"]["message"].startswith("CSRF Failed")
    assert Backup.objects.count() == 1 and RestoreDrill.objects.count() == 1
