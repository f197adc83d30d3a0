"""What goes wrong around backups in real life besides a bad dump: someone with write access
to the backup storage edits a manifest, a worker is killed mid-backup, retention and a drill
or a verification race for the same backup, the storage refuses a delete, and somebody reaches
for a backup that failed verification."""

import json
import os
import stat
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from alerts.models import Alert
from audit.models import AuditEvent
from backups import services, storage
from backups.engines import engine_for
from backups.engines.base import child_environment
from backups.exceptions import BackupFailed, BackupNotRestorable, BackupStorageFailed
from backups.models import Backup, BackupStatus, RestoreDrill
from backups.services import catalog
from backups.services.common import manifest_for, object_name
from backups.services.verify import verification_failed
from tests.backups.factories import BackupFactory, RestoreDrillFactory

real = pytest.mark.django_db(transaction=True)


@pytest.fixture
def books(ledger, post):
    for amount in ("100.00", "250.50"):
        post(ledger.cash, ledger.revenue, amount)
    return ledger


@pytest.fixture
def scratch():
    engine = engine_for(connection)
    with engine.scratch(services.drill_server(engine.name)) as target:
        yield target


def firing(key: str) -> Alert | None:
    return Alert.objects.filter(source="backups", key=key, state="firing").first()


def listing() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("restore", "--list", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def manifest_path(backup_dir: Path, backup: Backup) -> Path:
    return Path(backup_dir) / manifest_for(backup)


# --- manifests: signed, and of the schema ----------------------------------------------------


@real
def test_an_edited_manifest_is_skipped_and_never_restored_from(books, backup_dir, scratch):
    good = services.backup_create()
    edited = services.backup_create()
    path = manifest_path(backup_dir, edited)
    manifest = json.loads(path.read_text())
    manifest["location"] = good.location  # point the recovery at another object
    manifest["sha256"] = good.sha256
    path.write_text(json.dumps(manifest))

    out, err = listing()
    assert [line.split()[0] for line in out.splitlines()] == [f"#{good.pk}"]
    assert f"skipped {manifest_for(edited)}: its signature does not match" in err
    # The rows are gone (a recovery on a new server): only storage is asked, and it says no.
    Backup.objects.filter(pk=edited.pk).update(status=BackupStatus.PRUNED)
    Backup.objects.filter(pk=edited.pk).delete()
    assert catalog.find_backup(edited.pk) is None


@real
def test_a_manifest_signed_with_the_old_key_still_reads_after_a_key_rotation(
    books, backup_dir, settings
):
    backup = services.backup_create()
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-after-rotation-" + "x" * 40
    assert catalog.stored_manifests() == []
    settings.SECRET_KEY_FALLBACKS = [old]
    assert [m["id"] for m in catalog.stored_manifests()] == [backup.pk]


def signed(manifest: dict) -> bytes:
    return catalog.manifest_text(manifest).encode()


@real
@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"checkpoints": ["2026/01/other-backup.lgb.checkpoints/checkpoint-1.json"]}, "under"),
        ({"location": "../../etc/passwd"}, "name"),
        ({"sha256": "not-a-digest"}, "SHA-256"),
        ({"id": True}, "'id'"),
        ({"size_bytes": "12"}, "'size_bytes'"),
        ({"engine": "tar"}, "'engine'"),
        ({"started_at": "yesterday"}, "'started_at'"),
        ({"started_at": "2026-01-01T00:00:00"}, "time zone"),
        ({"row_counts": {"finance_journalline": "many"}}, "'row_counts'"),
    ],
)
def test_a_signed_manifest_outside_the_schema_is_refused(books, backup_dir, change, why):
    backup = services.backup_create()
    manifest = catalog.manifest_checked(manifest_path(backup_dir, backup).read_bytes())
    with pytest.raises(catalog.ManifestInvalid, match=why):
        catalog.manifest_checked(signed({**manifest, **change}))


def test_restore_list_shows_hostile_names_escaped(db, backup_dir):
    folder = Path(backup_dir) / "2026" / "12"
    folder.mkdir(parents=True)
    (folder / "\x1b]0;owned\x07x.manifest.json").write_text("{}")
    out, err = listing()
    assert out == ""
    assert "\x1b" not in err and "\x07" not in err
    assert "\\x1b]0;owned\\x07x.manifest.json: not signed" in err


# --- a failed backup removes what it stored, and only that ----------------------------------


@real
def test_a_backup_that_fails_after_storing_its_object_removes_it_and_nothing_else(
    books, backup_dir, monkeypatch
):
    first = services.backup_create()
    squatter = Path(backup_dir) / "squatter.txt"
    squatter.write_text("not ours")
    real_store = storage.store

    def store(local: Path, name: str):
        # The storage refuses the new backup's manifest, after its object and checkpoints.
        if name.endswith(".manifest.json"):
            raise BackupStorageFailed(f"the backup storage refused {name!r}: disk full")
        return real_store(local, name)

    monkeypatch.setattr(storage, "store", store)
    with pytest.raises(BackupFailed, match="disk full"):
        services.backup_create()
    monkeypatch.undo()
    backup = Backup.objects.exclude(pk=first.pk).get()
    assert backup.status == BackupStatus.FAILED and backup.checkpoints == []
    own = object_name(backup, "").rsplit("/", 1)[-1].removesuffix(f"{backup.engine}.lgb")
    left = [p.name for p in Path(backup_dir).rglob(f"{own}*") if p.is_file()]
    assert left == [], left  # its object and checkpoints went
    assert squatter.read_text() == "not ours"
    assert (Path(backup_dir) / first.location).exists()  # another backup's files stay
    assert manifest_path(backup_dir, first).exists()
    assert all((Path(backup_dir) / name).exists() for name in first.checkpoints)


# --- a worker killed mid-backup or mid-drill -------------------------------------------------


@real
def test_a_backup_whose_worker_died_is_failed_and_alerted_by_the_sweep(books, backup_dir, settings):
    settings.BACKUP_STALE_HOURS = 6
    kept = services.backup_create()
    dead = BackupFactory(
        status=BackupStatus.RUNNING,
        started_at=timezone.now() - timedelta(hours=7),
        location="",
        sha256="",
    )
    young = BackupFactory(status=BackupStatus.RUNNING, started_at=timezone.now(), location="")
    # What the killed worker had stored: a half-written object and a checkpoint copy.
    stem = object_name(dead, ".sqlite3")
    (Path(backup_dir) / stem).parent.mkdir(parents=True, exist_ok=True)
    (Path(backup_dir) / stem).write_bytes(b"half a backup")
    (Path(backup_dir) / f"{stem}.checkpoints").mkdir()
    (Path(backup_dir) / f"{stem}.checkpoints" / "checkpoint-1.json").write_text("{}")

    out = StringIO()
    call_command("prune_backups", stdout=out, stderr=StringIO())
    assert f"backup #{dead.pk} marked failed" in out.getvalue()

    dead.refresh_from_db()
    assert dead.status == BackupStatus.FAILED and "worker" in dead.error
    assert not (Path(backup_dir) / stem).exists()
    assert not (Path(backup_dir) / f"{stem}.checkpoints" / "checkpoint-1.json").exists()
    assert (Path(backup_dir) / kept.location).exists()
    young.refresh_from_db()
    assert young.status == BackupStatus.RUNNING  # still within BACKUP_STALE_HOURS
    alert = firing("backup_failed")
    assert alert is not None and f"#{dead.pk}" in alert.title
    assert AuditEvent.objects.get(action="backup.failed", object_id=str(dead.pk)).metadata["swept"]
    # The next good backup resolves the alert.
    services.backup_create()
    assert firing("backup_failed") is None


@real
def test_a_restored_backup_row_still_running_is_completed_from_its_manifest(
    books, backup_dir, settings
):
    backup = services.backup_create()
    # As a restored copy holds it: the row as it was at the snapshot, RUNNING, hours ago.
    started = timezone.now() - timedelta(hours=settings.BACKUP_STALE_HOURS + 1)
    Backup.objects.filter(pk=backup.pk).update(status=BackupStatus.RUNNING, sha256="")
    # The manifest's time is the backup's: move both back together.
    path = manifest_path(backup_dir, backup)
    Backup.objects.filter(pk=backup.pk).update(started_at=started)
    manifest = json.loads(path.read_text())
    manifest["started_at"] = started.isoformat()
    path.unlink()
    moved = Backup.objects.get(pk=backup.pk)
    manifest_path(backup_dir, moved).parent.mkdir(parents=True, exist_ok=True)
    manifest_path(backup_dir, moved).write_text(catalog.manifest_text(manifest))

    said = services.backups_sweep()
    assert said == [f"backup #{backup.pk} completed from its manifest"]
    moved.refresh_from_db()
    assert moved.status == BackupStatus.COMPLETED and moved.sha256 == backup.sha256
    assert firing("backup_failed") is None


@real
def test_a_drill_whose_worker_died_is_failed_and_alerted(books, settings):
    backup = services.backup_create()
    drill = RestoreDrillFactory(
        backup=backup,
        status=RestoreDrill.Status.RUNNING,
        started_at=timezone.now() - timedelta(hours=settings.BACKUP_STALE_HOURS + 1),
    )
    services.backups_sweep()
    drill.refresh_from_db()
    assert drill.status == RestoreDrill.Status.FAILED and drill.failed_step == "worker"
    backup.refresh_from_db()
    assert backup.status == BackupStatus.COMPLETED  # a dead worker says nothing of the backup
    assert firing("drill_failed") is not None


@real
def test_the_sweep_goes_by_the_workers_lease(books, settings):
    """A row a live worker holds is never swept, however old (it was asked for while the
    cluster was down); a row whose worker's lease lapsed is, at once, with that reason."""
    old = timezone.now() - timedelta(hours=settings.BACKUP_STALE_HOURS + 1)
    held = BackupFactory(status=BackupStatus.RUNNING, started_at=old, location="")
    lapsed = BackupFactory(status=BackupStatus.RUNNING, started_at=timezone.now(), location="")
    assert services.row_take(held) == services.row_take(lapsed) == "taken"
    Backup.objects.filter(pk=lapsed.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    drill = RestoreDrillFactory(
        backup=services.backup_create(), status=RestoreDrill.Status.RUNNING, started_at=old
    )
    assert services.row_take(drill) == "taken"
    said = services.backups_sweep()
    assert said == [f"backup #{lapsed.pk} marked failed: {Backup.objects.get(pk=lapsed.pk).error}"]
    assert "lease lapsed" in said[0]
    held.refresh_from_db()
    drill.refresh_from_db()
    assert held.status == BackupStatus.RUNNING and drill.status == RestoreDrill.Status.RUNNING


# --- retention against drills, verifications and a refusing storage --------------------------


@pytest.fixture
def old_and_new(books, settings):
    settings.BACKUP_KEEP_DAILY, settings.BACKUP_KEEP_WEEKLY, settings.BACKUP_KEEP_MONTHLY = 1, 0, 0
    old = services.backup_create()
    new = services.backup_create()
    Backup.objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(days=3))
    old.refresh_from_db()
    return old, new


@real
def test_retention_spares_a_backup_with_a_drill_running(old_and_new, backup_dir):
    old, _new = old_and_new
    RestoreDrillFactory(backup=old, status=RestoreDrill.Status.RUNNING)
    result = services.backups_prune()
    assert result.removed == [] and result.kept[old.pk] == ["drill running"]
    old.refresh_from_db()
    assert old.status == BackupStatus.COMPLETED
    assert (Path(backup_dir) / old.location).exists()


@real
def test_a_drill_of_a_pruned_backup_is_refused_even_from_a_stale_instance(old_and_new):
    old, _new = old_and_new
    services.backups_prune()
    with pytest.raises(BackupNotRestorable, match="pruned"):
        services.drill_start(backup=old)  # `old` still says COMPLETED in memory
    assert not RestoreDrill.objects.exists()


@real
def test_a_storage_that_refuses_the_delete_leaves_the_backup_as_it_was(
    old_and_new, backup_dir, monkeypatch
):
    old, _new = old_and_new

    def refuse(self, name):
        raise PermissionError(13, "Permission denied", name)

    monkeypatch.setattr(FileSystemStorage, "delete", refuse)
    with pytest.raises(CommandError) as failed:
        call_command("prune_backups", stdout=StringIO(), stderr=StringIO())
    assert failed.value.returncode == 1 and "could not be removed" in str(failed.value)
    old.refresh_from_db()
    assert old.status == BackupStatus.COMPLETED and old.pruned_at is None
    assert not AuditEvent.objects.filter(action="backup.pruned").exists()
    monkeypatch.undo()
    assert services.backups_prune().removed == [old.pk]  # the next run finishes the job


@real
def test_a_verification_that_loses_the_race_with_retention_raises_no_alert(old_and_new):
    old, _new = old_and_new
    services.backups_prune()
    with pytest.raises(BackupNotRestorable, match="pruned"):
        verification_failed(old, FileNotFoundError(old.location), None, step="verify")
    old.refresh_from_db()
    assert old.status == BackupStatus.PRUNED
    assert firing("verification_failed") is None


# --- a backup that failed verification is only used on purpose -------------------------------


@real
def test_restoring_an_unverified_backup_needs_the_flag_and_is_audited(books, scratch):
    backup = services.backup_create()
    Backup.objects.filter(pk=backup.pk).update(
        status=BackupStatus.UNVERIFIED, verification_error="drill #9 (checks): failing"
    )
    with pytest.raises(CommandError) as refused:
        call_command("restore", str(backup.pk), "--database-url", scratch.url(), stdout=StringIO())
    assert refused.value.returncode == 1 and "--allow-unverified" in str(refused.value)
    failed = AuditEvent.objects.get(action="backup.restore_failed", object_id=str(backup.pk))
    assert "failed verification" in failed.metadata["error"]
    assert "@" not in failed.metadata["target"]  # never a password

    call_command(
        "restore",
        str(backup.pk),
        "--database-url",
        scratch.url(),
        "--allow-unverified",
        stdout=StringIO(),
    )
    done = AuditEvent.objects.get(action="backup.restored", object_id=str(backup.pk))
    assert done.metadata["unverified"] is True


@real
def test_downloading_an_unverified_backup_needs_the_flag(api, admin_user, books):
    backup = services.backup_create()
    Backup.objects.filter(pk=backup.pk).update(status=BackupStatus.UNVERIFIED)
    client = api.as_user(admin_user)
    refused = client.get(f"/api/v1/backups/{backup.pk}/download/")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "backup.not_restorable"
    bad = client.get(f"/api/v1/backups/{backup.pk}/download/", {"allow_unverified": "maybe"})
    assert bad.status_code == 400
    allowed = client.get(f"/api/v1/backups/{backup.pk}/download/", {"allow_unverified": "true"})
    assert allowed.status_code == 200 and b"".join(allowed.streaming_content)
    event = AuditEvent.objects.get(action="backup.downloaded", object_id=str(backup.pk))
    assert event.metadata["unverified"] is True


# --- what children and files get ------------------------------------------------------------


def test_client_tools_get_libpq_defaults_but_none_of_the_application_secrets(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "s3cret")
    monkeypatch.setenv("BACKUP_ENCRYPTION_KEY", "k3y")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws")
    monkeypatch.setenv("PGSSLROOTCERT", "/etc/ssl/root.crt")
    env = child_environment("PG")
    assert env["PGSSLROOTCERT"] == "/etc/ssl/root.crt" and env["PATH"] == os.environ["PATH"]
    assert not {"SECRET_KEY", "BACKUP_ENCRYPTION_KEY", "AWS_SECRET_ACCESS_KEY"} & set(env)


@real
def test_a_restored_sqlite_file_is_readable_by_its_owner_only(books, tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("a SQLite restore")
    backup = services.backup_create()
    target = tmp_path / "recovered.sqlite3"
    call_command(
        "restore", str(backup.pk), "--database-url", f"sqlite:///{target}", stdout=StringIO()
    )
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


# --- from the second attack review -----------------------------------------------------------


@real
def test_a_checkpoints_dir_that_cannot_be_made_fails_before_the_target_is_touched(
    books, scratch, tmp_path
):
    backup = services.backup_create()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(CommandError) as failed:
        call_command(
            "restore",
            str(backup.pk),
            "--database-url",
            scratch.url(),
            "--checkpoints-dir",
            str(blocker / "checkpoints"),
            stdout=StringIO(),
        )
    assert failed.value.returncode == 1 and "--checkpoints-dir" in str(failed.value)
    assert engine_for(connection).is_empty(scratch)  # nothing written: a plain rerun works
    assert AuditEvent.objects.filter(action="backup.restore_failed").count() == 1


@real
def test_a_checksum_does_not_clear_a_failed_drill_but_a_passing_drill_does(books):
    backup = services.backup_create()
    Backup.objects.filter(pk=backup.pk).update(
        status=BackupStatus.UNVERIFIED, verification_error="drill #7 (compare): differs"
    )
    backup.refresh_from_db()
    out = StringIO()
    call_command("verify_backup", str(backup.pk), stdout=out)
    assert "stays unverified" in out.getvalue()
    backup.refresh_from_db()
    assert backup.status == BackupStatus.UNVERIFIED
    services.drill_run(drill=services.drill_start(backup=backup))
    backup.refresh_from_db()
    assert backup.status == BackupStatus.VERIFIED and backup.verification_error == ""


def test_a_backup_storage_that_fails_gives_one_line_not_a_traceback(db, settings, tmp_path):
    not_a_dir = tmp_path / "not-a-dir"
    not_a_dir.write_text("x")
    settings.BACKUP_DIR = not_a_dir
    BackupFactory(status=BackupStatus.RUNNING, location="")  # the sweep reads the storage
    for args in (["restore", "--list"], ["prune_backups"]):
        with pytest.raises(CommandError) as failed:
            call_command(*args, stdout=StringIO(), stderr=StringIO())
        assert failed.value.returncode == 1 and "\n" not in str(failed.value)


@real
def test_a_sqlite_target_whose_folder_cannot_be_made_fails_in_one_line(books, tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("a SQLite target")
    backup = services.backup_create()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(CommandError) as failed:
        call_command(
            "restore",
            str(backup.pk),
            "--database-url",
            f"sqlite:///{blocker}/x.sqlite3",
            stdout=StringIO(),
        )
    assert failed.value.returncode == 1 and "\n" not in str(failed.value)


@real
def test_a_head_request_downloads_nothing_and_records_nothing(api, admin_user, books):
    backup = services.backup_create()
    response = api.as_user(admin_user).head(f"/api/v1/backups/{backup.pk}/download/")
    assert response.status_code == 405
    assert not AuditEvent.objects.filter(action="backup.downloaded").exists()
