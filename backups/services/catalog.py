"""The backups as storage knows them, from the manifest stored beside each one: what a
recovery reads when the database that held the Backup rows is gone."""

import json
from datetime import datetime
from typing import Any

from django.db import DatabaseError

from backups.exceptions import BackupStorageFailed
from backups.models import Backup, BackupStatus
from backups.storage import STORAGE_FAILURES, backup_storage

MANIFEST_SUFFIX = ".manifest.json"


def _walk(store: Any, directory: str) -> list[str]:
    folders, files = store.listdir(directory)
    found = [f"{directory}/{f}".lstrip("/") for f in files if f.endswith(MANIFEST_SUFFIX)]
    for folder in folders:
        if folder.endswith(".checkpoints"):
            continue
        found += _walk(store, f"{directory}/{folder}".lstrip("/"))
    return found


def stored_manifests() -> list[dict[str, Any]]:
    """Every backup's manifest in storage, newest first (none on a fresh server, where the
    backup location does not exist yet)."""
    store = backup_storage()
    manifests = []
    try:
        for name in _walk(store, ""):
            with store.open(name, "rb") as handle:
                manifests.append(json.loads(handle.read()))
    except FileNotFoundError:
        return []
    except (OSError, ValueError, *STORAGE_FAILURES) as exc:
        raise BackupStorageFailed(f"the backup storage cannot be listed: {exc}") from None
    return sorted(manifests, key=lambda m: (m["started_at"], m["id"]), reverse=True)


def backup_from_manifest(manifest: dict[str, Any]) -> Backup:
    """An unsaved Backup standing for a stored one (for a restore into an empty server)."""
    fields = {f.name for f in Backup._meta.fields}
    values = {k: v for k, v in manifest.items() if k in fields}
    for key in ("started_at", "snapshot_at"):
        if values.get(key):
            values[key] = datetime.fromisoformat(values[key])
    return Backup(status=BackupStatus.COMPLETED, **values)


def find_backup(backup_id: int) -> Backup | None:
    """The backup's row, or, when the database has none (or no tables), its manifest."""
    try:
        return Backup.objects.get(pk=backup_id)
    except (Backup.DoesNotExist, DatabaseError):
        pass  # not in this database, or it has no tables or is gone: storage still knows
    for manifest in stored_manifests():
        if manifest["id"] == backup_id:
            return backup_from_manifest(manifest)
    return None
