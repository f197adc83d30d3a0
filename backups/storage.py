"""Where backups are kept: Django's STORAGES["backups"] behind one small interface.

The local file system at BACKUP_DIR by default; S3-compatible object storage (django-storages'
S3Storage) when BACKUP_S3_BUCKET is set (config/settings.py, "Backups"). Objects are read and
written in chunks of CHUNK bytes (S3 uploads in s3transfer's multipart parts), never whole in
memory. store() gives the SHA-256 of the file it stored, fetch() that of the bytes it read
back: a backup is intact when they agree. Names are relative paths of safe characters,
checked before any storage sees them. A storage that fails (a server down, refused
credentials, a full disk) is a BackupStorageFailed with one line saying what failed, never the
backend's traceback.
"""

import contextlib
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils.module_loading import import_string
from storages.backends.s3 import S3File, S3Storage

from backups.exceptions import (
    BackupNameInvalid,
    BackupObjectExists,
    BackupObjectMissing,
    BackupStorageFailed,
)

ALIAS = "backups"
CHUNK = 1 << 20
MAX_NAME_LENGTH = 200
# Path segments that start with a letter or digit: no "..", no ".", no hidden files, no
# absolute path, no backslash, no empty segment.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")
# What the backends raise when the storage fails: the file system's OSError, botocore's and
# boto3's errors (s3transfer wraps a failed upload in boto3's S3UploadFailedError).
_FAILURES = (OSError, BotoCoreError, ClientError, Boto3Error)
# What a storage backend raises when it fails (for callers that talk to it directly).
STORAGE_FAILURES = _FAILURES


@dataclass(frozen=True)
class StoredObject:
    """An object in the backup storage: its name there, size and SHA-256 as stored, and the
    storage's label (for Backup.storage)."""

    name: str
    size: int
    sha256: str
    storage: str


class _LocalFile(File):
    DEFAULT_CHUNK_SIZE = CHUNK  # what FileSystemStorage writes at a time


def backup_storage() -> Storage:
    """STORAGES["backups"]. A file system storage is built at each call at BACKUP_DIR as it is
    now: Django's storages registry keeps the location it saw first, and tests move BACKUP_DIR
    for each test (as integrity/health.py does). Any other backend is the registry's instance
    (an S3 client is costly to build; the registry drops it when STORAGES changes)."""
    config = settings.STORAGES[ALIAS]
    backend = import_string(config["BACKEND"])
    if issubclass(backend, FileSystemStorage):
        options: dict[str, Any] = {**(config.get("OPTIONS") or {}), "location": settings.BACKUP_DIR}
        filesystem: Storage = backend(**options)
        return filesystem
    return storages[ALIAS]


def storage_label(storage: Storage | None = None) -> str:
    """The storage backend's class (what Backup.storage records): "FileSystemStorage",
    "S3Storage"."""
    return type(storage or backup_storage()).__name__


def check_name(name: str) -> str:
    """`name` if it is a safe object name (relative, no `..`, safe characters), else
    BackupNameInvalid."""
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise BackupNameInvalid(
            f"{name[:MAX_NAME_LENGTH]!r} is not a backup object name: relative path segments "
            f"of letters, digits, '.', '_' and '-', each starting with a letter or digit, at "
            f"most {MAX_NAME_LENGTH} characters",
            fields={"name": name[:MAX_NAME_LENGTH]},
        )
    return name


def store(local: Path, name: str) -> StoredObject:
    """Store the local file `local` as `name`, streamed. Never overwrites: a taken name is
    BackupObjectExists. `sha256` is of the local file (read once before the upload, since
    boto3 may read parts of it again on a retry); the size the storage then reports must
    match. On a failure nothing is left under `name`."""
    check_name(name)
    storage = backup_storage()
    sha256, size = _local_digest(local)
    try:
        taken = storage.exists(name)
    except _FAILURES as exc:
        raise _failed(storage, "look up", name, exc) from None
    if taken:
        raise BackupObjectExists(f"{_where(storage)} already holds {name!r}")
    try:
        with local.open("rb") as source:
            stored_name = storage.save(name, _LocalFile(source, name=name))
        stored_size = storage.size(stored_name)
    except _FAILURES as exc:
        _discard(storage, name)
        raise _failed(storage, "store", name, exc) from None
    if stored_size != size:
        _discard(storage, stored_name)
        raise BackupStorageFailed(
            f"{_where(storage)} holds {stored_size} bytes of {name!r} after storing {size}"
        )
    return StoredObject(name=stored_name, size=size, sha256=sha256, storage=storage_label(storage))


def fetch(name: str, dest: Path) -> str:
    """Copy the stored object `name` to the local file `dest` (overwritten), streamed; the
    SHA-256 (hex) of the bytes read. On a failure `dest` is removed."""
    check_name(name)
    storage = backup_storage()
    digest = hashlib.sha256()
    try:
        with dest.open("wb") as out:
            for chunk in _read(storage, name):
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def read_chunks(name: str) -> Iterator[bytes]:
    """The stored object `name`, streamed in chunks (a download)."""
    check_name(name)
    return _read(backup_storage(), name)


def delete_quietly(name: str) -> None:
    """Delete `name` if it can be deleted; a failure is left for retention to retry (used
    when cleaning up after a failure that is already being reported)."""
    with contextlib.suppress(BackupStorageFailed, BackupNameInvalid):
        delete(name)


def delete(name: str) -> None:
    """Delete the stored object `name`; nothing happens when there is none."""
    check_name(name)
    storage = backup_storage()
    try:
        storage.delete(name)
    except _FAILURES as exc:
        raise _failed(storage, "delete", name, exc) from None


def exists(name: str) -> bool:
    check_name(name)
    storage = backup_storage()
    try:
        return storage.exists(name)
    except _FAILURES as exc:
        raise _failed(storage, "look up", name, exc) from None


def size(name: str) -> int:
    """The stored object's size in bytes; BackupObjectMissing when there is none."""
    check_name(name)
    storage = backup_storage()
    try:
        return storage.size(name)
    except FileNotFoundError:
        raise _missing(storage, name) from None
    except _FAILURES as exc:
        raise _failed(storage, "look up", name, exc) from None


def _local_digest(local: Path) -> tuple[str, int]:
    digest, total = hashlib.sha256(), 0
    with local.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            total += len(chunk)
    return digest.hexdigest(), total


def _read(storage: Storage, name: str) -> Iterator[bytes]:
    """The stored object in chunks. S3 objects are read from the response body as it arrives:
    django-storages' S3File would first download the whole object into a spooled file."""
    try:
        stored = storage.open(name, "rb")
        body = stored.obj.get()["Body"] if isinstance(stored, S3File) else stored
    except FileNotFoundError:
        raise _missing(storage, name) from None
    except ClientError as exc:
        if _status(exc) == 404:
            raise _missing(storage, name) from None
        raise _failed(storage, "read", name, exc) from None
    except _FAILURES as exc:
        raise _failed(storage, "read", name, exc) from None
    try:
        while True:
            try:
                chunk = body.read(CHUNK)
            except _FAILURES as exc:
                raise _failed(storage, "read", name, exc) from None
            if not chunk:
                return
            yield chunk
    finally:
        body.close()
        stored.close()


def _discard(storage: Storage, name: str) -> None:
    """Remove what a failed store may have left; the storage may be failing, so quietly."""
    with contextlib.suppress(*_FAILURES):
        storage.delete(name)


def _status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def _where(storage: Storage) -> str:
    if isinstance(storage, FileSystemStorage):
        return f"the backup directory {storage.location}"
    if isinstance(storage, S3Storage):
        endpoint = f" at {storage.endpoint_url}" if storage.endpoint_url else ""
        return f"the S3 bucket {storage.bucket_name}{endpoint}"
    return f"the backup storage ({storage_label(storage)})"


def _missing(storage: Storage, name: str) -> BackupObjectMissing:
    return BackupObjectMissing(f"{_where(storage)} holds no {name!r}", fields={"name": name})


def _failed(storage: Storage, action: str, name: str, exc: BaseException) -> BackupStorageFailed:
    lines = str(exc).strip().splitlines()
    reason = lines[-1][:300] if lines else type(exc).__name__
    return BackupStorageFailed(f"could not {action} {name!r} in {_where(storage)}: {reason}")
