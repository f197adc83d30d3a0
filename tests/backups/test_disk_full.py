"""A full disk, for real: a small tmpfs mounted as the backup location or as the scratch
directory (needs root, as CI and this machine run; skipped elsewhere). The backup fails with
the disk's own error, leaves nothing half-written, and alerts; a drill that cannot unpack
fails, marks the backup unverified, and alerts."""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from alerts.models import Alert
from backups import services
from backups.exceptions import BackupFailed
from backups.models import Backup, BackupStatus, RestoreDrill

real = pytest.mark.django_db(transaction=True)


@pytest.fixture
def books(ledger, post):
    for amount in ("100.00", "250.50", "75.25"):
        post(ledger.cash, ledger.revenue, amount)
    return ledger


@contextmanager
def mounted(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def tiny_backup_dir(settings, tmp_path) -> Iterator[Path]:
    """BACKUP_DIR on a small file system that something else has all but filled: a few KiB
    free, no room for a backup."""
    with mounted(tmp_path / "tiny-backups", "256k") as path:
        filler = path / "someone-elses-file"
        filler.write_bytes(b"x" * (os.statvfs(path).f_bavail * os.statvfs(path).f_frsize - 4096))
        settings.BACKUP_DIR = path
        yield path


def firing(key: str) -> Alert | None:
    return Alert.objects.filter(source="backups", key=key, state="firing").first()


@real
def test_a_full_backup_disk_fails_the_backup_cleanly_and_alerts(books, tiny_backup_dir):
    with pytest.raises(BackupFailed, match="No space left on device"):
        services.backup_create()
    backup = Backup.objects.get()
    assert backup.status == BackupStatus.FAILED and "No space left" in backup.error
    left = [p for p in tiny_backup_dir.rglob("*") if p.is_file() and ".lgb" in p.name]
    assert left == []  # nothing half-written stays
    assert (tiny_backup_dir / "someone-elses-file").exists()
    alert = firing("backup_failed")
    assert alert is not None and "No space left" in alert.title


@real
def test_a_drill_whose_scratch_disk_is_full_fails_marks_the_backup_and_alerts(
    books, backup_dir, settings, tmp_path
):
    backup = services.backup_verify(backup=services.backup_create())
    with mounted(tmp_path / "tiny-work", "64k") as work:
        settings.BACKUP_WORK_DIR = str(work)
        drill = services.drill_start(backup=backup)
        with pytest.raises(BackupFailed, match="No space left on device"):
            services.drill_run(drill=drill)
    drill.refresh_from_db()
    assert drill.status == RestoreDrill.Status.FAILED
    backup.refresh_from_db()
    assert backup.status == BackupStatus.UNVERIFIED
    assert "No space left" in backup.verification_error
    assert firing("drill_failed") is not None
