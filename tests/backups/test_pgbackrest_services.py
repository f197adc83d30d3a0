"""The backup services with BACKUP_ENGINE=pgbackrest, against a real stanza: a throwaway cluster
(tests/backups/pgbackrest_cluster.py) whose database is a migrated, seeded Ledgerguard
database with a signed audit checkpoint, so that a drill's checks and audit verification run
on the restored copy as they would in production.

The Django test database is not that cluster: the services are pointed at it through settings
(BACKUP_PGBACKREST_STANZA, _CONFIG, _DATABASE_URL) and keep their rows, audit events and alerts
in the test database as usual. The last tests need no cluster and run on both engines.
"""

import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError

from alerts.models import Alert
from audit.models import AuditEvent
from backups import services
from backups.exceptions import BackupFailed, BackupNotRestorable
from backups.models import Backup, BackupStatus, RestoreDrill
from backups.services import catalog
from tests.backups.factories import BackupFactory
from tests.backups.pgbackrest_cluster import NEEDS_PGBACKREST, Cluster, throwaway_cluster

pytestmark = pytest.mark.django_db(transaction=True)

STANZA = "ledgerguard"
DATABASE = "ledger"
MANAGE = Path(django_settings.BASE_DIR) / "manage.py"


def manage(cluster: Cluster, *args: str) -> str:
    """`manage.py <args>` in a child process on the cluster's database; its output.

    Its BACKUP_DIR is the cluster's own `root/ledgerguard`: `seed_demo` and `audit_checkpoint`
    sign checkpoints there. Left to the default (the checkout's var/backups), each xdist
    worker's cluster wrote its own checkpoint #253 beside the other's, and a drill of either
    found a checkpoint its chain does not have."""
    env = {
        **os.environ,
        "DATABASE_URL": cluster.url(),
        "BACKUP_DIR": str(cluster.root / "ledgerguard"),
    }
    env.pop("DATABASE_MIGRATE_URL", None)
    done = subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A Ledgerguard database on the stanza's cluster: migrated, seeded with a month of books,
    and its audit chain head signed into a checkpoint file (under `root/ledgerguard`)."""
    with throwaway_cluster(STANZA, DATABASE, retention_full=20) as made:
        manage(made, "migrate", "--no-input", "--verbosity=0")
        manage(made, "seed_demo", "--days", "30")
        manage(made, "audit_checkpoint")
        yield made


@pytest.fixture
def stored_in(settings, backup_dir) -> Path:
    """Backups (manifests and checkpoints, here) go to this test's own directory."""
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": backup_dir},
        },
    }
    return Path(backup_dir)


@pytest.fixture
def on_stanza(settings, cluster, stored_in) -> Cluster:
    """The services back up the cluster through its stanza; the checkpoint signed on it is in
    this test's BACKUP_DIR/audit-checkpoints, as the application keeps them."""
    settings.BACKUP_ENGINE = "pgbackrest"
    settings.BACKUP_PGBACKREST_STANZA = cluster.stanza
    settings.BACKUP_PGBACKREST_CONFIG = str(cluster.config)
    settings.BACKUP_PGBACKREST_DATABASE_URL = cluster.url()
    settings.BACKUP_WORK_DIR = str(cluster.root / "drills")
    shutil.copytree(
        cluster.root / "ledgerguard" / "audit-checkpoints", stored_in / "audit-checkpoints"
    )
    return cluster


def needs_pgbackrest(test: Callable[..., None]) -> Callable[..., None]:
    """The marks of the tests that use the cluster (the module has others)."""
    for mark in NEEDS_PGBACKREST:
        test = mark(test)
    return test


def firing(key: str) -> bool:
    return Alert.objects.filter(source="backups", key=key, state="firing").exists()


def one(cluster: Cluster, query: str) -> object:
    return cluster.sql(query)[0][0]


@needs_pgbackrest
def test_a_backup_records_its_set_stores_checkpoints_and_manifest_and_verifies(
    on_stanza, stored_in
):
    backup = services.backup_create()

    assert backup.engine == Backup.Engine.PGBACKREST
    assert backup.status == BackupStatus.COMPLETED, backup.error
    made = {s.label: s for s in on_stanza.engine.info()}[backup.label]
    assert made.type == "full"
    assert backup.location == backup.label
    assert backup.size_bytes == made.repo_size > 0
    assert backup.snapshot_at == made.stop
    assert backup.storage == f"pgbackrest:{STANZA}"
    assert backup.sha256 == ""
    assert backup.database == DATABASE
    # What the cluster's database held, not the test database.
    entries = one(on_stanza, "SELECT count(*) FROM finance_journalentry")
    assert backup.row_counts["finance_journalentry"] == entries > 0
    assert backup.row_counts["audit_auditevent"] == one(
        on_stanza, "SELECT count(*) FROM audit_auditevent"
    )
    assert backup.audit_head["id"] == one(on_stanza, "SELECT max(id) FROM audit_auditevent")
    assert backup.schema_version["finance"] == one(
        on_stanza,
        "SELECT name FROM django_migrations WHERE app = 'finance' ORDER BY id DESC LIMIT 1",
    )
    # The signed checkpoints and the manifest in the backup storage; the set is not there.
    assert backup.checkpoints
    assert all((stored_in / name).is_file() for name in backup.checkpoints)
    manifests = sorted(stored_in.rglob("*.manifest.json"))
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    assert manifest["id"] == backup.pk
    assert (manifest["engine"], manifest["label"], manifest["stanza"]) == (
        "pgbackrest",
        backup.label,
        STANZA,
    )
    assert manifest["row_counts"] == backup.row_counts
    assert catalog.find_backup(backup.pk) == backup
    assert not (stored_in / backup.label).exists()

    verified = services.backup_verify(backup=backup)

    assert verified.status == BackupStatus.VERIFIED and verified.verified_at
    event = AuditEvent.objects.get(action="backup.verified", object_id=str(backup.pk))
    assert event.metadata["label"] == backup.label


@needs_pgbackrest
def test_a_flipped_byte_in_the_repository_fails_verification_with_an_alert(on_stanza):
    backup = services.backup_create()
    pg_data = on_stanza.repo / "backup" / STANZA / backup.label / "pg_data"
    victim = max(pg_data.rglob("*.gz"), key=lambda p: p.stat().st_size)
    flip = victim.stat().st_size // 2

    def flip_the_byte() -> None:
        with victim.open("r+b") as f:  # in place: owner and mode unchanged
            f.seek(flip)
            byte = f.read(1)
            f.seek(flip)
            f.write(bytes([byte[0] ^ 0xFF]))

    flip_the_byte()
    try:
        with pytest.raises(BackupFailed, match="verification"):
            services.backup_verify(backup=backup)
    finally:
        flip_the_byte()  # back: the module's other tests use the repository

    backup.refresh_from_db()
    assert backup.status == BackupStatus.UNVERIFIED
    assert "invalid" in backup.verification_error
    assert backup.label in backup.verification_error
    assert firing("verification_failed")
    assert AuditEvent.objects.filter(
        action="backup.verification_failed", object_id=str(backup.pk)
    ).exists()
    # Intact again, it verifies, and that resolves the alert.
    assert services.backup_verify(backup=backup).status == BackupStatus.VERIFIED
    assert not firing("verification_failed")


@needs_pgbackrest
def test_a_drill_of_a_set_passes_with_its_timings(on_stanza):
    backup = services.backup_verify(backup=services.backup_create())

    drill = services.drill_run(drill=services.drill_start(backup=backup))

    assert drill.status == RestoreDrill.Status.PASSED, drill.error
    assert drill.restore_seconds > 0 and drill.checks_seconds > 0
    assert drill.recovery_point_seconds >= 0
    restored = drill.results["restored"]
    assert restored["label"] == backup.label
    assert restored["rows"] == sum(backup.row_counts.values())
    assert drill.results["checks"]["failing"] == []
    assert drill.results["audit"]["status"] == "ok"
    assert drill.results["audit"]["checkpoints_checked"] >= 1  # the one that travelled
    assert list((on_stanza.root / "drills").iterdir()) == []  # the copy is gone
    backup.refresh_from_db()
    assert backup.status == BackupStatus.VERIFIED


@needs_pgbackrest
def test_a_point_in_time_drill_has_the_first_row_and_not_the_second(on_stanza):
    backup = services.backup_verify(backup=services.backup_create())
    user = (
        "INSERT INTO auth_user (username, password, is_superuser, first_name, last_name, email,"
        " is_staff, is_active, date_joined) VALUES (%s, '!', false, '', '', '', false, true,"
        " now())"
    )
    on_stanza.sql(user, ["pitr-first"])
    time.sleep(0.2)
    between = one(on_stanza, "SELECT clock_timestamp()")
    time.sleep(0.2)
    on_stanza.sql(user, ["pitr-second"])
    on_stanza.archive_current_wal()

    drill = services.drill_run(drill=services.drill_start(backup=backup, target_time=between))

    assert drill.status == RestoreDrill.Status.PASSED, drill.error
    assert drill.target_time == between
    restored = drill.results["restored"]
    # The users as of the backup, and the first one added after it: not the second.
    assert restored["row_counts"]["auth_user"] == backup.row_counts["auth_user"] + 1
    assert restored["target_time"] == between.isoformat()
    assert restored["label"] == backup.label
    assert drill.results["checks"]["failing"] == []
    assert drill.results["audit"]["status"] == "ok"
    assert drill.restore_seconds > 0


@needs_pgbackrest
def test_verify_backup_command_runs_a_point_in_time_drill(on_stanza):
    backup = services.backup_create()
    time.sleep(0.2)
    at = one(on_stanza, "SELECT clock_timestamp()")
    time.sleep(0.2)
    # Recovery to a time stops at the first commit after it: there must be one.
    on_stanza.sql("CREATE TABLE after_the_target_time (id int)")
    on_stanza.archive_current_wal()
    out = io.StringIO()

    call_command(
        "verify_backup",
        str(backup.pk),
        "--restore-test",
        "--target-time",
        at.isoformat(),
        stdout=out,
    )

    text = out.getvalue()
    assert f"pgBackRest set {backup.label}" in text
    assert f"to {at.isoformat()} passed" in text
    assert RestoreDrill.objects.get(backup=backup).target_time == at


# --- without a cluster: on both engines ------------------------------------------------------


def test_a_point_in_time_drill_of_an_archive_backup_is_refused_before_verifying():
    backup = BackupFactory(engine=Backup.Engine.SQLITE, status=BackupStatus.COMPLETED)
    at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()

    with pytest.raises(CommandError) as caught:
        call_command("verify_backup", str(backup.pk), "--restore-test", "--target-time", at)

    assert caught.value.returncode == 1
    assert "point-in-time drills need a pgBackRest backup" in str(caught.value)
    with pytest.raises(BackupFailed):
        services.drill_start(backup=backup, target_time=datetime.now(UTC))
    assert not RestoreDrill.objects.exists()
    backup.refresh_from_db()
    assert backup.status == BackupStatus.COMPLETED  # never verified


def test_target_time_wants_a_timezone_and_a_drill():
    backup = BackupFactory(engine=Backup.Engine.PGBACKREST, label="20250101-010000F")

    with pytest.raises(CommandError, match="has no timezone"):
        call_command(
            "verify_backup", str(backup.pk), "--restore-test", "--target-time", "2025-01-01T10:00"
        )
    with pytest.raises(CommandError) as caught:
        call_command("verify_backup", str(backup.pk), "--target-time", "2025-01-01T10:00Z")
    assert caught.value.returncode == 2


def test_a_point_in_time_before_the_set_or_in_the_future_is_refused():
    backup = BackupFactory(engine=Backup.Engine.PGBACKREST, label="20250101-010000F")

    with pytest.raises(BackupFailed, match="before backup"):
        services.drill_start(backup=backup, target_time=backup.snapshot_at - timedelta(seconds=1))
    with pytest.raises(BackupFailed, match="future"):
        services.drill_start(backup=backup, target_time=datetime.now(UTC) + timedelta(hours=1))
    assert not RestoreDrill.objects.exists()


def test_pgbackrest_without_a_stanza_fails_the_backup_with_an_alert(settings):
    settings.BACKUP_ENGINE = "pgbackrest"
    settings.BACKUP_PGBACKREST_STANZA = ""

    with pytest.raises(BackupFailed, match="BACKUP_PGBACKREST_STANZA"):
        services.backup_create()

    backup = Backup.objects.get()
    assert (backup.engine, backup.status) == (Backup.Engine.PGBACKREST, BackupStatus.FAILED)
    assert firing("backup_failed")


def test_pgbackrest_refuses_a_database_that_is_not_postgresql(settings, tmp_path):
    settings.BACKUP_ENGINE = "pgbackrest"
    settings.BACKUP_PGBACKREST_STANZA = "main"
    settings.BACKUP_PGBACKREST_DATABASE_URL = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"

    with pytest.raises(BackupFailed, match="pgBackRest backs up PostgreSQL"):
        services.backup_create()

    assert Backup.objects.get().status == BackupStatus.FAILED


def test_a_set_is_neither_downloaded_nor_restored_by_url(tmp_path):
    backup = BackupFactory(engine=Backup.Engine.PGBACKREST, label="20250101-010000F")

    with pytest.raises(BackupNotRestorable, match="stanza's repository"):
        services.backup_download(backup=backup, actor=None)
    with pytest.raises(BackupFailed, match="pgbackrest --stanza=<stanza> --set=20250101-010000F"):
        services.backup_restore(backup=backup, database_url=f"sqlite:///{tmp_path / 'x'}")


def test_settings_refuse_pgbackrest_without_a_stanza():
    env = {**os.environ, "BACKUP_ENGINE": "pgbackrest", "BACKUP_PGBACKREST_STANZA": ""}

    done = subprocess.run(
        [sys.executable, str(MANAGE), "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode != 0
    assert "BACKUP_ENGINE=pgbackrest needs BACKUP_PGBACKREST_STANZA" in done.stderr
