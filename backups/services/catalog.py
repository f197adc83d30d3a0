"""The backups as storage knows them, from the manifest stored beside each one: what a
recovery reads when the database that held the Backup rows is gone.

A manifest is signed (HMAC-SHA256 keyed by SECRET_KEY, or one of SECRET_KEY_FALLBACKS, with
the salt below) and checked against a strict schema before anything trusts it: whoever can
write to the backup storage cannot point a recovery at an object of their own, at another
backup's checkpoints, or at a name outside the backup location. A manifest that fails either
is skipped and reported, never used."""

import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils.crypto import salted_hmac

from backups import storage
from backups.exceptions import BackupNameInvalid, BackupStorageFailed
from backups.models import Backup, BackupStatus
from backups.services.common import checkpoints_prefix
from backups.storage import STORAGE_FAILURES, backup_storage

MANIFEST_SUFFIX = ".manifest.json"
SIGNATURE_SALT = "ledgerguard.backups.manifest"
# A manifest is a few kilobytes (its checkpoint names grow with the audit trail's age); a
# bigger object under a manifest's name is not one.
MAX_MANIFEST_BYTES = 4 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ManifestInvalid(ValueError):
    """A stored manifest that is not signed by this server's key or not of the schema."""


@dataclass
class Catalog:
    """The valid manifests, newest first, and the names of those that were refused, why."""

    manifests: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _signature(manifest: dict[str, Any], secret: str) -> str:
    return salted_hmac(
        SIGNATURE_SALT, _canonical(manifest), secret=secret, algorithm="sha256"
    ).hexdigest()


def manifest_text(manifest: dict[str, Any]) -> str:
    """The manifest as stored: JSON with its signature."""
    plain = json.loads(json.dumps(manifest, default=str))  # datetimes as their ISO text
    plain["signature"] = _signature(plain, settings.SECRET_KEY)
    return json.dumps(plain, indent=2, sort_keys=True)


def manifest_checked(raw: bytes) -> dict[str, Any]:
    """The manifest in `raw` when it is signed by this server's key and of the schema;
    ManifestInvalid saying why otherwise."""
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise ManifestInvalid("not JSON") from None
    if not isinstance(manifest, dict):
        raise ManifestInvalid("not a JSON object")
    given = manifest.get("signature")
    if not isinstance(given, str):
        raise ManifestInvalid("not signed")
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not any(hmac.compare_digest(given, _signature(manifest, s)) for s in secrets):
        raise ManifestInvalid("its signature does not match this server's SECRET_KEY")
    _check_schema(manifest)
    return manifest


def _need(manifest: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = manifest.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ManifestInvalid(f"{key!r} is missing or of the wrong type")
    return value


def _check_schema(manifest: dict[str, Any]) -> None:
    if _need(manifest, "id", int) < 1:
        raise ManifestInvalid("'id' must be positive")
    if _need(manifest, "engine", str) not in Backup.Engine.values:
        raise ManifestInvalid("'engine' is not one this server knows")
    for key in ("started_at", "snapshot_at"):
        try:
            when = datetime.fromisoformat(_need(manifest, key, str))
        except ValueError:
            raise ManifestInvalid(f"{key!r} is not an ISO 8601 time") from None
        if when.tzinfo is None:
            raise ManifestInvalid(f"{key!r} has no time zone")
    for key in ("database", "location", "label", "storage"):
        _need(manifest, key, str)
    if _need(manifest, "size_bytes", int) < 0:
        raise ManifestInvalid("'size_bytes' is negative")
    for key in ("compressed", "encrypted"):
        _need(manifest, key, bool)
    for key in ("schema_version", "audit_head"):
        _need(manifest, key, dict)
    counts = _need(manifest, "row_counts", dict)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts.values()):
        raise ManifestInvalid("'row_counts' must map tables to integers")
    names = _need(manifest, "checkpoints", list)
    backup = backup_from_manifest(manifest)
    try:
        if manifest["engine"] != Backup.Engine.PGBACKREST:
            storage.check_name(manifest["location"])
            if not _SHA256.fullmatch(_need(manifest, "sha256", str)):
                raise ManifestInvalid("'sha256' is not a SHA-256 in hex")
        prefix = checkpoints_prefix(backup)
        for name in names:
            if not isinstance(name, str) or not name.startswith(prefix):
                raise ManifestInvalid(f"a checkpoint is not under the backup's own {prefix}")
            storage.check_name(name)
    except BackupNameInvalid as exc:
        raise ManifestInvalid(str(exc)) from None


# Backups lie at <year>/<month>/: deeper folders are not walked (nor is a symlink loop).
MAX_DEPTH = 3


def _walk(store: Any, directory: str, depth: int = 0) -> list[str]:
    folders, files = store.listdir(directory)
    found = [f"{directory}/{f}".lstrip("/") for f in files if f.endswith(MANIFEST_SUFFIX)]
    for folder in folders:
        if folder.endswith(".checkpoints") or depth >= MAX_DEPTH:
            continue
        found += _walk(store, f"{directory}/{folder}".lstrip("/"), depth + 1)
    return found


def read_catalog() -> Catalog:
    """Every backup's manifest in storage that is valid, newest first (none on a fresh server,
    where the backup location does not exist yet), and those refused."""
    store = backup_storage()
    catalog = Catalog()
    try:
        for name in _walk(store, ""):
            with store.open(name, "rb") as handle:
                raw = handle.read(MAX_MANIFEST_BYTES + 1)
            try:
                if len(raw) > MAX_MANIFEST_BYTES:
                    raise ManifestInvalid("larger than a manifest can be")
                catalog.manifests.append(manifest_checked(raw))
            except ManifestInvalid as exc:
                catalog.refused.append((name, str(exc)))
    except FileNotFoundError:
        return Catalog()
    except (OSError, *STORAGE_FAILURES) as exc:
        raise BackupStorageFailed(f"the backup storage cannot be listed: {exc}") from None
    catalog.manifests.sort(key=lambda m: (m["started_at"], m["id"]), reverse=True)
    return catalog


def stored_manifests() -> list[dict[str, Any]]:
    """The valid manifests in storage, newest first."""
    return read_catalog().manifests


def backup_from_manifest(manifest: dict[str, Any]) -> Backup:
    """An unsaved Backup standing for a stored one (for a restore into an empty server)."""
    fields = {f.name for f in Backup._meta.fields} - {"status", "created_by"}
    values = {k: v for k, v in manifest.items() if k in fields}
    for key in ("started_at", "snapshot_at"):
        if values.get(key):
            values[key] = datetime.fromisoformat(values[key])
    return Backup(status=BackupStatus.COMPLETED, **values)


def find_backup(backup_id: int) -> Backup | None:
    """The backup's row, or, when the database has none (or no tables), its manifest."""
    try:
        row: Backup | None = Backup.objects.get(pk=backup_id)
    except (Backup.DoesNotExist, DatabaseError):
        row = None  # not in this database, or it has no tables or is gone: storage still knows
    if row is not None and row.status != BackupStatus.RUNNING:
        return row
    # A RUNNING row in a restored database is the backup it was restored from, as of its
    # snapshot: its manifest says how it ended.
    for manifest in stored_manifests():
        if manifest["id"] == backup_id:
            stored = backup_from_manifest(manifest)
            if row is None or stored.started_at == row.started_at:
                return stored
    return row
