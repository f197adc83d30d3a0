"""Backup storage (backups/storage.py) on the local file system and on a real local
S3-compatible server (moto in server mode, tests/backups/conftest_storage.py)."""

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from backups import storage
from backups.exceptions import (
    BackupNameInvalid,
    BackupObjectExists,
    BackupObjectMissing,
    BackupStorageFailed,
)
from tests.backups.conftest_storage import MotoServer

MiB = 1 << 20
PREFIX = "ledgerguard/backups"
BASE_DIR = Path(django_settings.BASE_DIR)


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """One moto server for the module's S3 tests (each test gets its own bucket)."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


class Backend:
    """Where a test's objects are, and how the test reaches them behind the storage's back."""

    def __init__(self, kind, *, directory=None, moto=None, bucket=""):
        self.kind = kind
        self.directory = directory
        self.moto = moto
        self.bucket = bucket

    def raw(self, name) -> bytes:
        if self.kind == "local":
            return (self.directory / name).read_bytes()
        answer = self.moto.client().get_object(Bucket=self.bucket, Key=f"{PREFIX}/{name}")
        return answer["Body"].read()

    def replace(self, name, data: bytes) -> None:
        if self.kind == "local":
            (self.directory / name).write_bytes(data)
        else:
            self.moto.client().put_object(Bucket=self.bucket, Key=f"{PREFIX}/{name}", Body=data)

    def names(self) -> list[str]:
        if self.kind == "local":
            if not self.directory.exists():
                return []
            found = (p.relative_to(self.directory) for p in self.directory.rglob("*"))
            return sorted(str(p) for p in found if (self.directory / p).is_file())
        listing = self.moto.client().list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest.fixture(params=["local", "s3"])
def backend(request, settings, backup_dir):
    if request.param == "local":
        return Backend("local", directory=Path(backup_dir))
    server = request.getfixturevalue("moto")
    bucket = server.new_bucket()
    settings.STORAGES = {**settings.STORAGES, "backups": server.storages_entry(bucket, PREFIX)}
    return Backend("s3", moto=server, bucket=bucket)


def write_file(path: Path, size: int) -> str:
    """A file of `size` pseudo-random bytes, written in pieces; its SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        remaining = size
        while remaining:
            piece = os.urandom(min(remaining, MiB))
            digest.update(piece)
            out.write(piece)
            remaining -= len(piece)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_store_fetch_delete_round_trip_larger_than_a_chunk(backend, tmp_path):
    local = tmp_path / "archive.bin"
    expected = write_file(local, 3 * MiB + 12345)

    stored = storage.store(local, "2025/06/backup-1.bin")

    assert stored.name == "2025/06/backup-1.bin"
    assert stored.size == 3 * MiB + 12345
    assert stored.sha256 == expected
    assert stored.storage == ("FileSystemStorage" if backend.kind == "local" else "S3Storage")
    assert stored.storage == storage.storage_label()
    assert storage.exists("2025/06/backup-1.bin")
    assert storage.size("2025/06/backup-1.bin") == stored.size
    assert hashlib.sha256(backend.raw("2025/06/backup-1.bin")).hexdigest() == expected

    dest = tmp_path / "fetched.bin"
    assert storage.fetch("2025/06/backup-1.bin", dest) == expected
    assert sha256_of(dest) == expected

    storage.delete("2025/06/backup-1.bin")
    assert not storage.exists("2025/06/backup-1.bin")
    storage.delete("2025/06/backup-1.bin")  # deleting what is gone is not an error


def test_s3_objects_live_under_the_prefix(moto, settings, tmp_path):
    bucket = moto.new_bucket()
    settings.STORAGES = {**settings.STORAGES, "backups": moto.storages_entry(bucket, PREFIX)}
    local = tmp_path / "a.bin"
    write_file(local, 10)
    storage.store(local, "backup-2.bin")
    listing = moto.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in listing] == [f"{PREFIX}/backup-2.bin"]


def test_an_empty_file_round_trips(backend, tmp_path):
    local = tmp_path / "empty.bin"
    local.write_bytes(b"")
    stored = storage.store(local, "empty.bin")
    assert stored.size == 0
    assert storage.fetch("empty.bin", tmp_path / "out") == hashlib.sha256(b"").hexdigest()


def test_store_never_overwrites(backend, tmp_path):
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    expected = write_file(first, 1000)
    write_file(second, 2000)
    storage.store(first, "backup-3.bin")

    with pytest.raises(BackupObjectExists) as caught:
        storage.store(second, "backup-3.bin")

    assert caught.value.code == "backup.object_exists"
    assert hashlib.sha256(backend.raw("backup-3.bin")).hexdigest() == expected
    assert len(backend.names()) == 1


def test_a_missing_object_is_a_clear_error(backend, tmp_path):
    dest = tmp_path / "fetched.bin"
    with pytest.raises(BackupObjectMissing) as caught:
        storage.fetch("no-such-backup.bin", dest)
    assert caught.value.code == "backup.object_missing"
    assert "no-such-backup.bin" in caught.value.message
    assert not dest.exists()

    with pytest.raises(BackupObjectMissing):
        storage.size("no-such-backup.bin")
    assert storage.exists("no-such-backup.bin") is False


def test_a_flipped_byte_in_the_stored_object_changes_the_fetched_sha256(backend, tmp_path):
    local = tmp_path / "archive.bin"
    write_file(local, 2 * MiB + 7)
    stored = storage.store(local, "backup-4.bin")
    data = bytearray(backend.raw("backup-4.bin"))
    data[MiB + 3] ^= 0x01
    backend.replace("backup-4.bin", bytes(data))

    fetched = storage.fetch("backup-4.bin", tmp_path / "fetched.bin")

    assert fetched != stored.sha256
    assert fetched == hashlib.sha256(bytes(data)).hexdigest()


BAD_NAMES = [
    "",
    "../escape.bin",
    "a/../../escape.bin",
    "..",
    ".",
    "/etc/passwd",
    "//server/share",
    "a//b.bin",
    "a/./b.bin",
    ".hidden",
    "a/",
    "a\\..\\b.bin",
    "C:\\backups\\x.bin",
    "name with space.bin",
    "nul\x00byte.bin",
    "line\nbreak.bin",
    "x" * 201,
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_cannot_escape_the_backup_location(backend, tmp_path, name):
    local = tmp_path / "archive.bin"
    write_file(local, 100)
    before = sorted(tmp_path.rglob("*"))
    calls = [
        lambda: storage.store(local, name),
        lambda: storage.fetch(name, tmp_path / "out.bin"),
        lambda: storage.delete(name),
        lambda: storage.exists(name),
        lambda: storage.size(name),
    ]
    for call in calls:
        with pytest.raises(BackupNameInvalid) as caught:
            call()
        assert caught.value.code == "backup.name_invalid"
    assert backend.names() == []
    assert sorted(tmp_path.rglob("*")) == before  # nothing written beside BACKUP_DIR


def test_local_backups_are_readable_by_their_owner_only(backup_dir, tmp_path):
    local = tmp_path / "archive.bin"
    write_file(local, 100)
    storage.store(local, "nested/backup-5.bin")
    path = Path(backup_dir) / "nested" / "backup-5.bin"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_local_storage_follows_backup_dir(settings, tmp_path):
    settings.BACKUP_DIR = tmp_path / "elsewhere"
    local = tmp_path / "archive.bin"
    write_file(local, 10)
    storage.store(local, "backup-6.bin")
    assert (tmp_path / "elsewhere" / "backup-6.bin").is_file()


def test_a_broken_local_storage_is_a_clear_error(settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the backup directory should be")
    settings.BACKUP_DIR = blocker / "backups"
    local = tmp_path / "archive.bin"
    write_file(local, 10)

    with pytest.raises(BackupStorageFailed) as caught:
        storage.store(local, "backup-7.bin")

    error = caught.value
    assert error.code == "backup.storage_failed"
    assert "backup-7.bin" in error.message and str(blocker) in error.message
    assert error.__cause__ is None and error.__suppress_context__  # no backend traceback
    assert blocker.read_text().startswith("a file")


def test_an_s3_server_that_is_down_is_a_clear_error(settings, tmp_path):
    server = MotoServer(tmp_path / "moto-down.log")
    bucket = server.new_bucket()
    settings.STORAGES = {**settings.STORAGES, "backups": server.storages_entry(bucket, PREFIX)}
    local = tmp_path / "archive.bin"
    write_file(local, MiB + 1)
    storage.store(local, "backup-8.bin")
    server.stop()

    calls = {
        "store": lambda: storage.store(local, "backup-9.bin"),
        "fetch": lambda: storage.fetch("backup-8.bin", tmp_path / "out.bin"),
        "exists": lambda: storage.exists("backup-8.bin"),
        "size": lambda: storage.size("backup-8.bin"),
        "delete": lambda: storage.delete("backup-8.bin"),
    }
    for call in calls.values():
        with pytest.raises(BackupStorageFailed) as caught:
            call()
        error = caught.value
        assert error.code == "backup.storage_failed"
        assert f"the S3 bucket {bucket} at {server.url}" in error.message
        assert "\n" not in error.message
        assert error.__cause__ is None and error.__suppress_context__
    assert not (tmp_path / "out.bin").exists()


def test_settings_from_the_environment_point_at_s3(moto, tmp_path):
    """config/settings.py builds STORAGES["backups"] from the BACKUP_S3_* variables: a child
    process (no test settings) stores and fetches through it, and it is what the fixture uses."""
    bucket = moto.new_bucket()
    local = tmp_path / "archive.bin"
    expected = write_file(local, MiB + 99)
    script = (
        "import json, sys, django; django.setup()\n"
        "from pathlib import Path\n"
        "from django.conf import settings\n"
        "from backups import storage\n"
        "stored = storage.store(Path(sys.argv[1]), 'from-env/backup.bin')\n"
        "fetched = storage.fetch('from-env/backup.bin', Path(sys.argv[2]))\n"
        "print(json.dumps({'stored': stored.sha256, 'fetched': fetched,\n"
        "    'label': stored.storage, 'entry': settings.STORAGES['backups']}))\n"
    )
    env = {
        **os.environ,
        **moto.environment(bucket, PREFIX),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": "storage-test",
    }
    result = subprocess.run(
        [sys.executable, "-c", script, str(local), str(tmp_path / "out.bin")],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["stored"] == answer["fetched"] == expected
    assert answer["label"] == "S3Storage"
    assert answer["entry"] == moto.storages_entry(bucket, PREFIX)
    keys = moto.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in keys] == [f"{PREFIX}/from-env/backup.bin"]
    head = moto.client().head_object(Bucket=bucket, Key=f"{PREFIX}/from-env/backup.bin")
    assert head["ContentType"] == "application/octet-stream"
