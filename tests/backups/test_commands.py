"""The backup commands as an operator runs them (docs/backups.md, "Commands"): what they print,
what they change, and their exit status (CommandError.returncode; 0 when none is raised)."""

from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from backups import services
from backups.engines import engine_for
from backups.models import Backup, BackupStatus, RestoreDrill
from backups.services.common import manifest_name

# A backup reads the database through its own connection: the rows must be committed.
real = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    """The command's standard output; it must succeed (exit status 0)."""
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def fails(*args: str) -> CommandError:
    """The command must fail; its CommandError (returncode, the one-line message)."""
    with pytest.raises(CommandError) as failed:
        call_command(*args, stdout=StringIO(), stderr=StringIO())
    return failed.value


@pytest.fixture
def books(ledger, post):
    for amount in ("100.00", "250.50", "75.25"):
        post(ledger.cash, ledger.revenue, amount)
    return ledger


@pytest.fixture
def scratch():
    """An empty database on the suite's engine (a SQLite file, or a PostgreSQL database
    beside the test database), dropped afterwards."""
    engine = engine_for(connection)
    with engine.scratch(services.drill_server(engine.name)) as target:
        yield target


# --- backup ----------------------------------------------------------------------------------


@real
def test_backup_takes_one_and_says_where(books, backup_dir):
    out = run("backup")
    backup = Backup.objects.get()
    assert backup.status == BackupStatus.COMPLETED and backup.trigger == "command"
    assert out.splitlines() == [
        f"backup #{backup.pk} {backup.engine}: {backup.size_bytes} bytes in "
        f"{backup.duration_seconds:.1f} s, sha256 {backup.sha256}, at {backup.location}"
    ]
    assert (Path(backup_dir) / backup.location).stat().st_size == backup.size_bytes


@real
def test_backup_verify_verifies_it(books):
    out = run("backup", "--verify")
    backup = Backup.objects.get()
    assert backup.status == BackupStatus.VERIFIED and backup.verified_at
    assert out.splitlines()[-1] == f"backup #{backup.pk} verified"
    assert not RestoreDrill.objects.exists()


@real
def test_backup_restore_test_verifies_and_drills_it(books):
    out = run("backup", "--restore-test")
    backup = Backup.objects.get()
    drill = RestoreDrill.objects.get()
    assert backup.status == BackupStatus.VERIFIED
    assert drill.backup == backup and drill.status == RestoreDrill.Status.PASSED, drill.error
    lines = out.splitlines()
    assert lines[1] == f"backup #{backup.pk} verified"
    assert lines[2].startswith(f"restore drill #{drill.pk} passed: restore ")


@real
def test_a_failing_backup_exits_1_with_one_line(books, settings):
    settings.BACKUP_COMPRESSION_LEVEL = 99  # zstd has no such level: packing refuses it
    error = fails("backup", "--verify")
    assert error.returncode == 1
    assert "\n" not in str(error) and "BACKUP_COMPRESSION_LEVEL" in str(error)
    backup = Backup.objects.get()
    assert backup.status == BackupStatus.FAILED and "BACKUP_COMPRESSION_LEVEL" in backup.error


# --- verify_backup ---------------------------------------------------------------------------


@real
def test_verify_backup_latest_verifies_the_newest_stored_one(books):
    older = services.backup_create()
    newer = services.backup_create()
    out = run("verify_backup", "latest")
    assert out.splitlines() == [f"backup #{newer.pk} verified (sha256 {newer.sha256})"]
    newer.refresh_from_db()
    older.refresh_from_db()
    assert newer.status == BackupStatus.VERIFIED and older.status == BackupStatus.COMPLETED


@real
def test_verify_backup_id_restore_test_runs_a_drill(books):
    backup = services.backup_create()
    out = run("verify_backup", str(backup.pk), "--restore-test")
    drill = RestoreDrill.objects.get()
    assert drill.status == RestoreDrill.Status.PASSED, drill.error
    assert drill.trigger == "command" and drill.restore_seconds > 0
    assert out.splitlines()[0] == f"backup #{backup.pk} verified (sha256 {backup.sha256})"
    assert out.splitlines()[1].startswith(f"restore drill #{drill.pk} passed")


@pytest.mark.parametrize("ref", ["nope", "-1", " 1", "1.0", "\u00b2", "\u0663", ""])
def test_verify_backup_of_something_that_is_no_id_exits_2(db, ref):
    error = fails("verify_backup", ref)
    assert error.returncode == 2, str(error)
    assert "give a backup id or 'latest'" in str(error)


@pytest.mark.parametrize("ref", ["99999", "9" * 30])
def test_verify_backup_of_an_unknown_id_exits_1_with_one_line(db, ref):
    error = fails("verify_backup", ref)
    assert error.returncode == 1 and str(error) == f"no backup #{ref}"


def test_verify_backup_latest_without_a_backup_exits_1(db):
    error = fails("verify_backup", "latest")
    assert error.returncode == 1 and str(error) == "no stored backup to verify"


@real
def test_verify_backup_of_a_damaged_object_exits_1_with_one_line(books, backup_dir):
    backup = services.backup_create()
    path = Path(backup_dir) / backup.location
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    error = fails("verify_backup", str(backup.pk))
    assert error.returncode == 1 and "\n" not in str(error) and "SHA-256" in str(error)
    backup.refresh_from_db()
    assert backup.status == BackupStatus.UNVERIFIED


# --- prune_backups ---------------------------------------------------------------------------


@pytest.fixture
def aged(books, settings):
    """Three stored backups: the newest verified three days old, a completed one two days
    old, and a completed one of today. Retention keeps one day."""
    settings.BACKUP_KEEP_DAILY, settings.BACKUP_KEEP_WEEKLY, settings.BACKUP_KEEP_MONTHLY = 1, 0, 0
    verified = services.backup_verify(backup=services.backup_create())
    middle = services.backup_create()
    today = services.backup_create()
    now = timezone.now()
    Backup.objects.filter(pk=verified.pk).update(started_at=now - timedelta(days=3))
    Backup.objects.filter(pk=middle.pk).update(started_at=now - timedelta(days=2))
    return verified, middle, today


def stored_names(backup: Backup) -> list[str]:
    return [backup.location, manifest_name(backup.location), *backup.checkpoints]


@real
def test_prune_dry_run_lists_what_would_go_and_removes_nothing(aged, backup_dir):
    verified, middle, today = aged
    out = run("prune_backups", "--dry-run")
    assert f"would remove backup #{middle.pk}" in out.splitlines()
    assert f"kept backup #{verified.pk} (newest verified)" in out.splitlines()
    assert f"kept backup #{today.pk} (daily)" in out.splitlines()
    assert out.splitlines()[-1] == "1 would remove, 2 kept"
    for backup in aged:
        backup.refresh_from_db()
        assert backup.status != BackupStatus.PRUNED and backup.pruned_at is None
        assert all((Path(backup_dir) / name).exists() for name in stored_names(backup))
    assert not AuditEvent.objects.filter(action="backup.pruned").exists()


@real
def test_prune_removes_objects_marks_rows_and_keeps_the_newest_verified(aged, backup_dir):
    verified, middle, today = aged
    out = run("prune_backups")
    assert f"removed backup #{middle.pk}" in out.splitlines()
    assert out.splitlines()[-1] == "1 removed, 2 kept"
    middle.refresh_from_db()
    assert middle.status == BackupStatus.PRUNED and middle.pruned_at
    assert not any((Path(backup_dir) / name).exists() for name in stored_names(middle))
    event = AuditEvent.objects.get(action="backup.pruned")
    assert event.object_id == str(middle.pk)
    for kept in (verified, today):
        kept.refresh_from_db()
        assert kept.status != BackupStatus.PRUNED
        assert (Path(backup_dir) / kept.location).exists()
    # Nothing left to do: a second run removes nothing, and the newest verified stays.
    assert run("prune_backups").splitlines()[-1] == "0 removed, 2 kept"
    verified.refresh_from_db()
    assert verified.status == BackupStatus.VERIFIED


# --- restore ---------------------------------------------------------------------------------


@real
def test_restore_list_shows_the_stored_backups_newest_first(books):
    first = services.backup_create()
    second = services.backup_create()
    lines = run("restore", "--list").splitlines()
    assert [line.split()[0] for line in lines] == [f"#{second.pk}", f"#{first.pk}"]
    assert second.location in lines[0] and str(second.size_bytes) in lines[0]
    assert second.sha256[:16] in lines[0]


@real
def test_restore_fills_an_empty_target_refuses_it_then_and_force_restores_over_it(books, scratch):
    backup = services.backup_create()
    url = scratch.url()
    out = run("restore", str(backup.pk), "--database-url", url)
    assert out.startswith(f"backup #{backup.pk} restored in ")
    engine = engine_for(connection)
    assert engine.inspect(scratch, list(backup.row_counts)).row_counts == backup.row_counts

    error = fails("restore", str(backup.pk), "--database-url", url)
    assert error.returncode == 1 and "not empty" in str(error) and "\n" not in str(error)

    out = run("restore", str(backup.pk), "--database-url", url, "--force")
    assert out.startswith(f"backup #{backup.pk} restored in ")
    assert engine.inspect(scratch, list(backup.row_counts)).row_counts == backup.row_counts
    restored = AuditEvent.objects.filter(action="backup.restored", object_id=str(backup.pk))
    assert [e.metadata["forced"] for e in restored.order_by("id")] == [False, True]


def test_restore_without_an_id_or_a_target_exits_2(db):
    assert fails("restore").returncode == 2
    assert fails("restore", "1").returncode == 2


@real
def test_restore_of_an_unknown_backup_exits_1(books, scratch):
    services.backup_create()  # storage holds a backup, just not this one
    error = fails("restore", "99999", "--database-url", scratch.url())
    assert error.returncode == 1 and str(error) == "no backup #99999 in the database or in storage"


def test_restore_on_a_server_without_any_stored_backup_says_so(db, tmp_path):
    assert run("restore", "--list") == ""
    error = fails("restore", "99999", "--database-url", f"sqlite:///{tmp_path / 'new.sqlite3'}")
    assert error.returncode == 1 and "no backup #99999" in str(error)
