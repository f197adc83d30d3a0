"""The backups control as it fails in real life, on the engine the suite runs on: a stored
object with one byte flipped, a deleted object, a drill whose restored copy fails a check, a
restore into a database that is not empty; and the healthy path, measured."""

import datetime as dt
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from django_q.exceptions import TimeoutException

from alerts.models import Alert
from audit.models import AuditEvent
from backups import services, tasks
from backups.engines import engine_for, target_for
from backups.exceptions import (
    BackupBusy,
    BackupCorrupt,
    BackupFailed,
    RestoreTargetNotEmpty,
)
from backups.models import Backup, BackupStatus, RestoreDrill
from backups.services import backup as backup_service
from finance.models import AccountBalance, JournalEntry
from integrity import services as integrity_services
from integrity.models import DeadLetter
from tests.integrity.factories import DeadLetterFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def stored_in(settings, backup_dir):
    """Backups go to this test's own directory."""
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": backup_dir},
        },
    }
    return Path(backup_dir)


@pytest.fixture
def books(ledger, post):
    for amount in ("100.00", "250.50", "75.25"):
        post(ledger.cash, ledger.revenue, amount)
    return ledger


def firing(key: str) -> bool:
    return Alert.objects.filter(source="backups", key=key, state="firing").exists()


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_backup_records_what_the_database_held_and_verifies(books, stored_in):
    backup = services.backup_create()
    assert backup.status == BackupStatus.COMPLETED
    assert (stored_in / backup.location).stat().st_size == backup.size_bytes
    assert len(backup.sha256) == 64
    assert backup.row_counts["finance_journalentry"] == JournalEntry.objects.count() == 3
    assert backup.schema_version["finance"] and backup.schema_version["audit"]
    # The head as of the copy: the backup's own "started" event, not the "completed" one.
    started = AuditEvent.objects.get(action="backup.started", object_id=str(backup.pk))
    assert backup.audit_head["id"] == started.id
    assert backup.finished_at >= backup.snapshot_at >= backup.started_at
    verified = services.backup_verify(backup=backup)
    assert verified.status == BackupStatus.VERIFIED and verified.verified_at
    actions = set(
        AuditEvent.objects.filter(object_id=str(backup.pk)).values_list("action", flat=True)
    )
    assert {"backup.started", "backup.completed", "backup.verified"} <= actions


def test_one_flipped_byte_fails_verification_with_an_alert_and_a_good_run_resolves_it(
    books, stored_in
):
    backup = services.backup_create()
    flip_a_byte(stored_in / backup.location)
    with pytest.raises(BackupFailed, match="SHA-256"):
        services.backup_verify(backup=backup)
    backup.refresh_from_db()
    assert backup.status == BackupStatus.UNVERIFIED
    assert "SHA-256" in backup.verification_error
    assert firing("verification_failed")
    services.backup_verify(backup=services.backup_create())
    assert not firing("verification_failed")


def test_a_deleted_object_fails_verification_with_an_alert(books, stored_in):
    backup = services.backup_create()
    (stored_in / backup.location).unlink()
    with pytest.raises(BackupFailed):
        services.backup_verify(backup=backup)
    backup.refresh_from_db()
    assert backup.status == BackupStatus.UNVERIFIED
    assert firing("verification_failed")


def test_a_healthy_drill_passes_and_records_its_timings(books):
    backup = services.backup_verify(backup=services.backup_create())
    drill = services.drill_run(drill=services.drill_start(backup=backup))
    assert drill.status == RestoreDrill.Status.PASSED, drill.error
    assert drill.restore_seconds > 0 and drill.checks_seconds > 0
    assert drill.recovery_point_seconds >= 0
    assert drill.results["checks"]["failing"] == []
    assert drill.results["restored"]["rows"] > 0


def test_a_drill_whose_restored_copy_fails_a_check_fails(books):
    # The live books are damaged when the backup is taken: the cached balance is wrong.
    AccountBalance.objects.filter(account=books.cash).update(debit_total=12345)
    backup = services.backup_verify(backup=services.backup_create())
    with pytest.raises(BackupFailed, match="checks"):
        services.drill_run(drill=services.drill_start(backup=backup))
    drill = RestoreDrill.objects.get()
    assert drill.status == RestoreDrill.Status.FAILED and drill.failed_step == "checks"
    assert "finance.balance_cache" in drill.results["failing"]
    backup.refresh_from_db()
    assert backup.status == BackupStatus.UNVERIFIED
    assert firing("drill_failed")


def test_restore_refuses_a_database_that_is_not_empty(books, tmp_path):
    backup = services.backup_create()
    engine = engine_for(connection)
    with engine.scratch(services.drill_server(engine.name)) as target:
        services.backup_restore(backup=backup, database_url=target.url())
        with pytest.raises(RestoreTargetNotEmpty):
            services.backup_restore(backup=backup, database_url=target.url())
        services.backup_restore(backup=backup, database_url=target.url(), force=True)
        assert engine.inspect(target, list(backup.row_counts)).row_counts == backup.row_counts


def test_commands_fail_with_status_1_and_one_line(books, stored_in):
    call_command("backup", "--verify")
    backup = Backup.objects.get()
    (stored_in / backup.location).unlink()
    with pytest.raises(CommandError) as exc:
        call_command("verify_backup", "latest")
    assert exc.value.returncode == 1 and "\n" not in str(exc.value)


def test_a_forced_restore_proves_the_backup_before_it_touches_the_target(books, stored_in):
    backup = services.backup_create()
    engine = engine_for(connection)
    with engine.scratch(services.drill_server(engine.name)) as target:
        services.backup_restore(backup=backup, database_url=target.url())
        flip_a_byte(stored_in / backup.location)
        with pytest.raises(BackupCorrupt, match="SHA-256"):
            services.backup_restore(backup=backup, database_url=target.url(), force=True)
        # The target still holds the books it had.
        assert engine.inspect(target, list(backup.row_counts)).row_counts == backup.row_counts


def test_a_forced_restore_never_overwrites_the_live_database(books):
    backup = services.backup_create()
    url = target_for("default").url()
    with pytest.raises(RestoreTargetNotEmpty, match="runs on"):
        services.backup_restore(backup=backup, database_url=url, force=True)
    assert JournalEntry.objects.count() == 3


# --- django-q presents a failed task again (ack_failures=False) ---------------------------------


def test_a_failed_drill_presented_again_by_the_queue_keeps_its_outcome(books, stored_in):
    backup = services.backup_verify(backup=services.backup_create())
    drill = services.drill_start(backup=backup)
    flip_a_byte(stored_in / backup.location)
    with pytest.raises(BackupFailed, match="SHA-256"):
        tasks.restore_drill(drill.pk)  # the first attempt: the worker records a failed task
    drill.refresh_from_db()
    assert drill.status == RestoreDrill.Status.FAILED
    failed_at, error = drill.finished_at, drill.error
    # The retry, minutes later: the drill is not run (nor its failure stamped) again, so it
    # never looks newer than a drill that passed after it.
    assert tasks.restore_drill(drill.pk) == {
        "drill": drill.pk,
        "status": RestoreDrill.Status.FAILED,
        "restore_seconds": None,
    }
    drill.refresh_from_db()
    assert (drill.finished_at, drill.error) == (failed_at, error)
    assert AuditEvent.objects.filter(action="backup.drill_failed").count() == 1


def test_a_backup_presented_again_by_the_queue_is_not_taken_twice(books, stored_in):
    # The worker died after the copy was stored, before it was verified: the retry verifies it.
    backup = services.backup_create()
    assert backup.status == BackupStatus.COMPLETED
    assert tasks.backup_and_verify(backup.pk) == {
        "backup": backup.pk,
        "status": BackupStatus.VERIFIED,
    }
    stored = sorted(p.name for p in stored_in.rglob("*") if p.is_file())
    # Presented once more: nothing is taken, stored or verified again.
    assert tasks.backup_and_verify(backup.pk)["status"] == BackupStatus.VERIFIED
    assert sorted(p.name for p in stored_in.rglob("*") if p.is_file()) == stored
    assert AuditEvent.objects.filter(action="backup.completed").count() == 1
    assert AuditEvent.objects.filter(action="backup.verified").count() == 1
    assert Backup.objects.count() == 1


@pytest.mark.parametrize(
    ("dies_in", "how"),
    [
        ("_completed", "completed from its manifest"),  # all stored, the row not yet saved
        ("_store_manifest", "taken again"),  # the archive stored, its manifest not
    ],
)
def test_a_backup_whose_worker_died_is_finished_by_the_retry(
    books, stored_in, monkeypatch, dies_in, how
):
    """The worker is cut off (django-q's timeout raises TimeoutException, a SystemExit that no
    `except Exception` sees; a SIGKILL skips every handler alike) with the row RUNNING. The
    retry neither fails the backup on the names its predecessor left (storage never
    overwrites) nor leaves them behind."""
    backup = services.backup_start(trigger=Backup.Trigger.COMMAND)
    monkeypatch.setattr(backup_service, dies_in, _cut_off)
    with pytest.raises(TimeoutException):
        tasks.backup_and_verify(backup.pk)
    monkeypatch.undo()
    backup.refresh_from_db()
    assert backup.status == BackupStatus.RUNNING and any(stored_in.rglob("*.lgb"))
    # Presented again before the dead worker's lease lapsed: nobody can tell it from a live
    # one yet, so the job waits (fails, to be tried again) and touches nothing.
    with pytest.raises(BackupBusy, match="held by another worker"):
        tasks.backup_and_verify(backup.pk)
    assert any(stored_in.rglob("*.lgb"))
    _lapse(backup)  # Q_TIMEOUT later
    assert tasks.backup_and_verify(backup.pk)["status"] == BackupStatus.VERIFIED
    backup.refresh_from_db()
    stored = sorted(str(p.relative_to(stored_in)) for p in stored_in.rglob("*") if p.is_file())
    assert stored == sorted(services.common.stored_files(backup)), how  # nothing left over
    assert not Alert.objects.filter(key="backup_failed").exists()
    assert AuditEvent.objects.filter(action="backup.completed").count() == 1
    retaken = AuditEvent.objects.filter(action="backup.retaken")
    assert retaken.count() == (dies_in == "_store_manifest")
    if dies_in == "_store_manifest":  # the names the dead worker stored, removed and said
        assert any(name.endswith(".lgb") for name in retaken.get().metadata["removed"])
    # ... and it restores: the drill of the finished backup passes.
    drill = services.drill_run(drill=services.drill_start(backup=backup))
    assert drill.status == RestoreDrill.Status.PASSED, drill.error


def test_a_job_handed_out_twice_runs_on_one_worker_only(books, stored_in, monkeypatch):
    """django-q's broker starts a job's retry clock when the job leaves the queue, and its
    timeout only when a worker begins it, so a job that waited for a worker is handed out
    again while its first run still goes. The second run finds the row held and touches
    nothing: before, it removed the first run's archive, and the first wrote FAILED over the
    second's VERIFIED."""
    backup = services.backup_start(trigger=Backup.Trigger.COMMAND)
    real, second = backup_service._store_checkpoints, []

    def meanwhile(*args, **kwargs):  # the first run has stored its archive
        with pytest.raises(BackupBusy):
            tasks.backup_and_verify(backup.pk)
        second.append(sorted(p.name for p in stored_in.rglob("*.lgb")))
        return real(*args, **kwargs)

    monkeypatch.setattr(backup_service, "_store_checkpoints", meanwhile)
    assert tasks.backup_and_verify(backup.pk)["status"] == BackupStatus.VERIFIED
    assert len(second) == 1 and len(second[0]) == 1  # the archive survived the second run
    backup.refresh_from_db()
    assert backup.status == BackupStatus.VERIFIED and not AuditEvent.objects.filter(
        action__in=["backup.failed", "backup.retaken"]
    )
    # ... and its drill passes.
    drill = services.drill_run(drill=services.drill_start(backup=backup))
    assert drill.status == RestoreDrill.Status.PASSED, drill.error


def test_a_drill_is_run_by_one_worker_and_again_after_its_worker_died(books, stored_in):
    backup = services.backup_verify(backup=services.backup_create())
    drill = services.drill_start(backup=backup)
    assert services.row_take(drill) == "taken"  # a worker began it, and was killed
    with pytest.raises(BackupBusy):
        tasks.restore_drill(drill.pk)
    _lapse(drill)
    assert tasks.restore_drill(drill.pk)["status"] == RestoreDrill.Status.PASSED
    assert tasks.restore_drill(drill.pk)["status"] == RestoreDrill.Status.PASSED  # not re-run
    assert AuditEvent.objects.filter(action="backup.drill_passed").count() == 1


def _lapse(row):
    type(row).objects.filter(pk=row.pk).update(lease_until=timezone.now() - dt.timedelta(seconds=1))


def _cut_off(*args, **kwargs):
    raise TimeoutException("Task exceeded maximum timeout value (300 seconds)")


def test_a_dead_letter_of_a_held_backup_waits_instead_of_failing_for_good(books, stored_in):
    """A dead letter's scheduled retry of a backup job whose row a live worker still holds is
    tried again later: the worker will finish or its lease lapse; it is not failed for good."""
    backup = services.backup_start(trigger=Backup.Trigger.COMMAND)
    assert services.row_take(backup) == "taken"
    letter = DeadLetterFactory(
        kind=DeadLetter.Kind.TASK,
        operation="backups.tasks.backup_and_verify",
        payload={"args": [backup.pk]},
    )
    letter = integrity_services.deadletter_retry(dead_letter=letter, manual=False)
    assert letter.status == DeadLetter.Status.PENDING and "backup.busy" in letter.error
    _lapse(backup)
    letter = integrity_services.deadletter_retry(dead_letter=letter, manual=False)
    assert letter.status == DeadLetter.Status.RESOLVED
    backup.refresh_from_db()
    assert backup.status == BackupStatus.VERIFIED
