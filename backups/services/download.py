"""Downloading a stored backup (admins only): the object as stored, and an audit event."""

from typing import IO, Any

from backups import storage
from backups.exceptions import BackupNotRestorable
from backups.models import Backup
from backups.services.common import record
from backups.services.verify import RESTORABLE


def backup_download(*, backup: Backup, actor: Any) -> IO[bytes]:
    """An open stream of the stored object (compressed and encrypted as stored)."""
    if backup.status not in RESTORABLE:
        raise BackupNotRestorable(f"Backup #{backup.pk} is {backup.status}: nothing to download.")
    stream = storage.open_stream(backup.location)
    record("backup.downloaded", backup, actor, location=backup.location, size=backup.size_bytes)
    return stream
