"""The backups admin (Django's test client): who sees the backups and drills, who may take a
backup, verify, drill and download, and the audit event each of those leaves."""

import hashlib
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client
from django.utils.module_loading import import_string
from django_q.models import OrmQ

from audit.models import AuditEvent
from backups import services
from backups.exceptions import BackupFailed
from backups.models import Backup, BackupStatus, RestoreDrill
from tests.backups.factories import BackupFactory, RestoreDrillFactory
from tests.conftest import ROLES

BACKUPS = "/admin/backups/backup/"
DRILLS = "/admin/backups/restoredrill/"
TAKE = "/admin/backups/backup/take/"
READERS = {"auditor", "operator", "admin"}


def download_url(backup: Backup) -> str:
    return f"/admin/backups/backup/{backup.pk}/download/"


def run_queued(func: str) -> None:
    """Run what the admin queued for a worker: the function named in the queued package."""
    queued = [q for q in OrmQ.objects.order_by("id") if q.task["func"] == func]
    assert len(queued) == 1, [q.task["func"] for q in OrmQ.objects.all()]
    task = queued[0].task
    queued[0].delete()
    import_string(func)(*task["args"], **task["kwargs"])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def events(action: str):
    return AuditEvent.objects.filter(action=action)


@pytest.fixture
def logged_in(client, make_user):
    def as_role(role: str):
        client.force_login(make_user(role, username=role))
        return client

    return as_role


@pytest.fixture
def stored(db, backup_dir):
    """A backup row with a small object stored at its location (no real archive)."""
    data = b"stored backup bytes"
    backup = BackupFactory(
        status=BackupStatus.COMPLETED, sha256=hashlib.sha256(data).hexdigest(), size_bytes=19
    )
    path = Path(backup_dir) / backup.location
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return backup


@pytest.fixture
def books(ledger, post):
    for amount in ("100.00", "250.50"):
        post(ledger.cash, ledger.revenue, amount)
    return ledger


# --- who sees what ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_change_lists_load_for_readers_only(logged_in, stored, role):
    drill = RestoreDrillFactory(backup=stored, recovery_point_seconds=42.0)
    client = logged_in(role)
    pages = [BACKUPS, DRILLS, f"{BACKUPS}{stored.pk}/change/", f"{DRILLS}{drill.pk}/change/"]
    for page in pages:
        response = client.get(page)
        assert (response.status_code == 200) == (role in READERS), (role, page)
        assert response.status_code in (200, 302, 403)
    if role in READERS:
        listed = client.get(BACKUPS).content.decode()
        assert f"{BACKUPS}{stored.pk}/change/" in listed and "Completed" in listed
        assert "42.0" in client.get(DRILLS).content.decode()


@pytest.mark.parametrize(
    ("role", "take", "actions", "download"),
    [
        ("auditor", False, False, False),
        ("operator", True, True, False),
        ("admin", True, True, True),
    ],
)
def test_buttons_actions_and_links_follow_the_role(
    logged_in, stored, role, take, actions, download
):
    page = logged_in(role).get(BACKUPS).content.decode()
    assert ("Take a backup now" in page) == take
    assert (f'action="{TAKE}"' in page) == take
    assert ('value="verify_backups"' in page) == actions
    assert ('value="drill_backups"' in page) == actions
    assert (download_url(stored) in page) == download


def test_no_download_link_for_a_backup_without_an_object(logged_in, stored):
    failed = BackupFactory(status=BackupStatus.FAILED)
    pruned = BackupFactory(status=BackupStatus.PRUNED)
    page = logged_in("admin").get(BACKUPS).content.decode()
    assert download_url(stored) in page
    assert download_url(failed) not in page and download_url(pruned) not in page


# --- take a backup now -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_operator_takes_a_backup_now_and_a_worker_verifies_it(logged_in, books):
    client = logged_in("operator")
    response = client.post(TAKE)
    assert response.status_code == 302 and response["Location"] == BACKUPS
    backup = Backup.objects.get()
    assert backup.status == BackupStatus.RUNNING and backup.trigger == Backup.Trigger.ADMIN
    assert backup.created_by.username == "operator"
    assert any(f"Backup #{backup.pk} started" in m for m in messages_of(response))
    started = events("backup.started").get()
    assert started.object_id == str(backup.pk) and started.actor_id == backup.created_by_id

    run_queued("backups.tasks.backup_and_verify")
    backup.refresh_from_db()
    assert backup.status == BackupStatus.VERIFIED, backup.error or backup.verification_error
    assert events("backup.verified").get().object_id == str(backup.pk)


@pytest.mark.parametrize("role", ["auditor", "finance_clerk"])
def test_take_is_refused_without_the_operator_role(logged_in, role):
    response = logged_in(role).post(TAKE)
    assert response.status_code == 403
    assert not Backup.objects.exists()
    assert not OrmQ.objects.exists()
    assert not events("backup.started").exists()


def test_take_needs_a_post(logged_in):
    response = logged_in("operator").get(TAKE)
    assert response.status_code == 405
    assert not Backup.objects.exists() and not OrmQ.objects.exists()


# --- verify and drill actions ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_operator_verifies_and_drills_from_the_change_list(logged_in, books):
    backup = services.backup_create()
    client = logged_in("operator")
    operator_id = get_user_model().objects.get(username="operator").pk

    response = client.post(BACKUPS, {"action": "verify_backups", "_selected_action": [backup.pk]})
    assert response.status_code == 302
    assert f"Backup #{backup.pk}: verification started on a worker." in messages_of(response)
    run_queued("backups.tasks.verify")
    backup.refresh_from_db()
    assert backup.status == BackupStatus.VERIFIED
    assert events("backup.verified").get().actor_id == operator_id

    response = client.post(BACKUPS, {"action": "drill_backups", "_selected_action": [backup.pk]})
    assert response.status_code == 302
    drill = RestoreDrill.objects.get()
    assert drill.status == RestoreDrill.Status.RUNNING and drill.trigger == Backup.Trigger.ADMIN
    assert drill.created_by_id == operator_id
    assert any(f"Restore drill #{drill.pk}" in m for m in messages_of(response))
    assert events("backup.drill_started").get().actor_id == operator_id

    run_queued("backups.tasks.restore_drill")
    drill.refresh_from_db()
    assert drill.status == RestoreDrill.Status.PASSED, drill.error
    assert events("backup.drill_passed").get().object_id == str(backup.pk)


def test_a_failing_verification_marks_the_backup_and_says_why(
    logged_in, stored, django_capture_on_commit_callbacks
):
    # The stored bytes are not a packed backup: the checksum matches, unpacking does not.
    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in("operator").post(
            BACKUPS, {"action": "verify_backups", "_selected_action": [stored.pk]}
        )
    assert response.status_code == 302
    with pytest.raises(BackupFailed):
        run_queued("backups.tasks.verify")
    stored.refresh_from_db()
    assert stored.status == BackupStatus.UNVERIFIED and stored.verification_error
    assert events("backup.verification_failed").get().object_id == str(stored.pk)


def test_drill_of_a_pruned_backup_is_refused_with_a_message(logged_in):
    pruned = BackupFactory(status=BackupStatus.PRUNED)
    response = logged_in("operator").post(
        BACKUPS, {"action": "drill_backups", "_selected_action": [pruned.pk]}
    )
    assert response.status_code == 302
    assert any("nothing to restore" in m for m in messages_of(response))
    assert not RestoreDrill.objects.exists() and not OrmQ.objects.exists()


@pytest.mark.parametrize("action", ["verify_backups", "drill_backups"])
def test_auditor_cannot_run_the_actions(logged_in, stored, action):
    response = logged_in("auditor").post(
        BACKUPS, {"action": action, "_selected_action": [stored.pk]}
    )
    assert response.status_code in (200, 302, 403)
    stored.refresh_from_db()
    assert stored.status == BackupStatus.COMPLETED
    assert not RestoreDrill.objects.exists() and not OrmQ.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="backup.").exists()


# --- download --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_admin_downloads_the_stored_object(logged_in, books, backup_dir):
    backup = services.backup_create()
    client = logged_in("admin")
    assert download_url(backup) in client.get(BACKUPS).content.decode()
    response = client.get(download_url(backup))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    data = b"".join(response.streaming_content)
    assert hashlib.sha256(data).hexdigest() == backup.sha256
    assert data == (Path(backup_dir) / backup.location).read_bytes()
    event = events("backup.downloaded").get()
    assert event.object_id == str(backup.pk) and event.actor.username == "admin"


@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_only_admins_download(logged_in, stored, role):
    response = logged_in(role).get(download_url(stored))
    assert response.status_code in (302, 403)
    assert not getattr(response, "streaming", False)
    assert b"stored backup bytes" not in response.content
    assert not events("backup.downloaded").exists()


@pytest.mark.parametrize("status", [BackupStatus.FAILED, BackupStatus.PRUNED])
def test_download_of_a_backup_without_an_object_says_why(logged_in, status):
    backup = BackupFactory(status=status)
    response = logged_in("admin").get(download_url(backup))
    assert response.status_code == 302
    assert any("backup.not_restorable" in m for m in messages_of(response))
    assert not events("backup.downloaded").exists()


def test_download_of_an_unknown_backup_is_404(logged_in):
    assert logged_in("admin").get("/admin/backups/backup/99999/download/").status_code == 404


def test_admin_writes_need_the_csrf_token(make_user, stored):
    """Another site cannot make an operator's browser take a backup, verify or drill."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("operator", username="operator"))
    assert client.post(TAKE).status_code == 403
    for action in ("verify_backups", "drill_backups"):
        response = client.post(BACKUPS, {"action": action, "_selected_action": [stored.pk]})
        assert response.status_code == 403
    assert Backup.objects.count() == 1 and not RestoreDrill.objects.exists()
    stored.refresh_from_db()
    assert stored.status == BackupStatus.COMPLETED
    assert not AuditEvent.objects.filter(action__startswith="backup.").exists()
