"""Downloading a stored backup (admins only): the object as stored, and an audit event."""

from collections.abc import Iterator
from typing import Any

from backups import storage
from backups.exceptions import BackupNotRestorable
from backups.models import Backup, BackupStatus
from backups.services.common import record
from backups.services.verify import RESTORABLE


def backup_download(
    *, backup: Backup, actor: Any, allow_unverified: bool = False
) -> Iterator[bytes]:
    """The stored object in chunks (compressed and encrypted as stored). A backup whose
    verification or drill failed only with `allow_unverified` (recorded in the event)."""
    if backup.status not in RESTORABLE:
        raise BackupNotRestorable(f"Backup #{backup.pk} is {backup.status}: nothing to download.")
    if backup.status == BackupStatus.UNVERIFIED and not allow_unverified:
        raise BackupNotRestorable(
            f"Backup #{backup.pk} failed verification ({backup.verification_error}); ask "
            "with allow_unverified=true to download it anyway."
        )
    if backup.engine == Backup.Engine.PGBACKREST:
        raise BackupNotRestorable(
            f"Backup #{backup.pk} is pgBackRest set {backup.label}, kept in the stanza's "
            "repository: nothing to download here."
        )
    if not storage.exists(backup.location):
        raise BackupNotRestorable(f"Backup #{backup.pk}: its stored object is gone.")
    stream = storage.read_chunks(backup.location)
    record(
        "backup.downloaded",
        backup,
        actor,
        location=backup.location,
        size=backup.size_bytes,
        unverified=backup.status == BackupStatus.UNVERIFIED,
    )
    return stream
