"""Packed backups through the services (docs/backups.md, "Storage, compression, encryption"):
an encrypted backup hides the books and still verifies, drills and restores; without its key,
or with another, it does not verify; compression can be switched off; and the whole path works
against S3-compatible object storage (a real local moto server)."""

import hashlib
import json
from pathlib import Path

import pytest
from django.db import connection

from alerts.models import Alert
from backups import crypto, services
from backups.engines import engine_for
from backups.exceptions import BackupFailed, BackupKeyMissing
from backups.models import Backup, BackupStatus, RestoreDrill
from backups.services import catalog
from tests.backups.conftest_storage import MotoServer

pytestmark = pytest.mark.django_db(transaction=True)

# Words the books hold that an encrypted backup must not show.
DESCRIPTION = "Zanzibar orchid consignment, lot 7731"
TABLE = b"finance_journalentry"
PREFIX = "ledgerguard/backups"


@pytest.fixture
def books(ledger, post):
    for amount in ("100.00", "250.50"):
        post(ledger.cash, ledger.revenue, amount, description=DESCRIPTION)
    return ledger


@pytest.fixture
def key(settings):
    settings.BACKUP_ENCRYPTION_KEY = crypto.generate_key()
    return settings.BACKUP_ENCRYPTION_KEY


@pytest.fixture
def scratch():
    engine = engine_for(connection)
    with engine.scratch(services.drill_server(engine.name)) as target:
        yield target


def stored(backup_dir: Path, backup: Backup) -> Path:
    return Path(backup_dir) / backup.location


def firing(key: str) -> Alert | None:
    return Alert.objects.filter(source="backups", key=key, state="firing").first()


# --- encryption ------------------------------------------------------------------------------


def test_an_encrypted_backup_hides_the_books_and_verifies_drills_and_restores(
    books, key, backup_dir, scratch
):
    backup = services.backup_create()
    assert backup.encrypted and backup.compressed
    path = stored(backup_dir, backup)
    header = crypto.read_header(path)
    assert header.encrypted and header.key_id == crypto.key_id(crypto.decode_key(key))
    data = path.read_bytes()
    assert TABLE not in data and DESCRIPTION.encode() not in data
    assert b"Zanzibar" not in data and key.encode() not in data

    backup = services.backup_verify(backup=backup)
    assert backup.status == BackupStatus.VERIFIED and backup.verification_error == ""

    drill = services.drill_run(drill=services.drill_start(backup=backup))
    assert drill.status == RestoreDrill.Status.PASSED, drill.error
    assert drill.results["checks"]["failing"] == []

    services.backup_restore(backup=backup, database_url=scratch.url())
    restored = engine_for(connection).inspect(scratch, list(backup.row_counts))
    assert restored.row_counts == backup.row_counts
    assert restored.audit_head == backup.audit_head


def test_the_probe_would_see_the_books_in_a_plain_backup(books, settings, backup_dir):
    """The words test_an_encrypted_backup... looks for are there when nothing hides them
    (pg_dump compresses table data itself, so only the table of contents is plain there)."""
    settings.BACKUP_COMPRESSION = False
    backup = services.backup_create()
    assert not backup.encrypted
    assert TABLE in stored(backup_dir, backup).read_bytes()


def test_without_the_key_verification_fails_and_alerts(books, key, settings):
    backup = services.backup_create()
    settings.BACKUP_ENCRYPTION_KEY = ""
    with pytest.raises(BackupFailed, match="BACKUP_ENCRYPTION_KEY is not set"):
        services.backup_verify(backup=backup)
    backup.refresh_from_db()
    assert backup.status == BackupStatus.UNVERIFIED
    assert "BACKUP_ENCRYPTION_KEY is not set" in backup.verification_error
    alert = firing("verification_failed")
    assert alert is not None and "BACKUP_ENCRYPTION_KEY is not set" in alert.details["error"]
    # With the key back, it verifies again and the alert is resolved.
    settings.BACKUP_ENCRYPTION_KEY = key
    assert services.backup_verify(backup=backup).status == BackupStatus.VERIFIED
    assert firing("verification_failed") is None


def test_with_another_key_verification_fails_and_alerts(books, key, settings):
    backup = services.backup_create()
    settings.BACKUP_ENCRYPTION_KEY = crypto.generate_key()
    with pytest.raises(BackupFailed, match="another key"):
        services.backup_verify(backup=backup)
    backup.refresh_from_db()
    assert backup.status == BackupStatus.UNVERIFIED
    assert "another key" in backup.verification_error
    assert "another key" in firing("verification_failed").details["error"]


@pytest.mark.parametrize(
    ("other", "code"), [("", "backup.key_missing"), ("new", "backup.key_mismatch")]
)
def test_the_verification_error_and_the_alert_name_the_error_code(
    books, key, settings, other, code
):
    backup = services.backup_create()
    settings.BACKUP_ENCRYPTION_KEY = crypto.generate_key() if other else ""
    with pytest.raises(BackupFailed):
        services.backup_verify(backup=backup)
    backup.refresh_from_db()
    alert = firing("verification_failed")
    assert code in backup.verification_error
    assert code in alert.title or code in json.dumps(alert.details)


def test_a_restore_without_the_key_writes_nothing(books, key, settings, scratch):
    backup = services.backup_create()
    settings.BACKUP_ENCRYPTION_KEY = ""
    with pytest.raises(BackupKeyMissing):
        services.backup_restore(backup=backup, database_url=scratch.url())
    assert engine_for(connection).is_empty(scratch)


# --- compression -----------------------------------------------------------------------------


def test_with_compression_off_the_backup_says_so_and_verifies(books, settings, backup_dir):
    compressed = services.backup_create()
    settings.BACKUP_COMPRESSION = False
    plain = services.backup_create()
    assert compressed.compressed and not plain.compressed
    assert not crypto.read_header(stored(backup_dir, plain)).compressed
    assert crypto.read_header(stored(backup_dir, compressed)).compressed
    assert plain.size_bytes > compressed.size_bytes
    assert services.backup_verify(backup=plain).status == BackupStatus.VERIFIED
    manifest = json.loads((Path(backup_dir) / f"{plain.location}.manifest.json").read_text())
    assert manifest["compressed"] is False and manifest["sha256"] == plain.sha256


# --- S3-compatible storage -------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture
def bucket(moto, settings):
    name = moto.new_bucket()
    settings.STORAGES = {**settings.STORAGES, "backups": moto.storages_entry(name, PREFIX)}
    return name


def test_a_backup_to_s3_is_taken_verified_and_drilled(books, moto, bucket, backup_dir):
    backup = services.backup_create()
    assert backup.storage == "S3Storage"
    assert not stored(backup_dir, backup).exists()  # nothing went to the local directory
    client = moto.client()
    body = client.get_object(Bucket=bucket, Key=f"{PREFIX}/{backup.location}")["Body"].read()
    assert len(body) == backup.size_bytes
    assert hashlib.sha256(body).hexdigest() == backup.sha256
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert f"{PREFIX}/{backup.location}.manifest.json" in keys
    assert {f"{PREFIX}/{name}" for name in backup.checkpoints} <= keys

    backup = services.backup_verify(backup=backup)
    assert backup.status == BackupStatus.VERIFIED
    drill = services.drill_run(drill=services.drill_start(backup=backup))
    assert drill.status == RestoreDrill.Status.PASSED, drill.error
    assert [m["id"] for m in catalog.stored_manifests()] == [backup.pk]


def test_a_changed_object_in_s3_fails_verification(books, moto, bucket):
    backup = services.backup_create()
    client = moto.client()
    object_key = f"{PREFIX}/{backup.location}"
    data = bytearray(client.get_object(Bucket=bucket, Key=object_key)["Body"].read())
    data[len(data) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=object_key, Body=bytes(data))
    with pytest.raises(BackupFailed, match="SHA-256"):
        services.backup_verify(backup=backup)
    backup.refresh_from_db()
    assert backup.status == BackupStatus.UNVERIFIED
    assert firing("verification_failed") is not None
