"""Signed checkpoints of the chain head, kept in the database and in BACKUP_DIR, and the
signature checks the verification and the checks share."""

import hashlib
import hmac
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import witness
from audit.canonical import checkpoint_document, checkpoint_file_name, format_time
from audit.exceptions import SigningKeyMissing
from audit.models import ChainHead, Checkpoint


def key_id(key: str) -> str:
    return hashlib.sha256(b"ledgerguard-audit-key|" + key.encode()).hexdigest()[:16]


def _signing_keys() -> dict[str, str]:
    keys = [settings.AUDIT_SIGNING_KEY, *settings.AUDIT_SIGNING_OLD_KEYS]
    return {key_id(k): k for k in keys if k}


def checkpoint_message(*, sequence: int, hash: str, created_at: str) -> bytes:
    return f"ledgerguard-audit-checkpoint|v1|{sequence}|{hash}|{created_at}".encode()


def checkpoint_signature(*, key: str, sequence: int, hash: str, created_at: str) -> str:
    message = checkpoint_message(sequence=sequence, hash=hash, created_at=created_at)
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def checkpoint_signature_problem(
    *, sequence: int, hash: str, created_at: str, kid: str, signature: str
) -> str | None:
    """None when the checkpoint is signed by AUDIT_SIGNING_KEY or an old key; otherwise the
    problem code: `checkpoint.unknown_key` or `checkpoint.bad_signature`."""
    key = _signing_keys().get(kid)
    if key is None:
        return "checkpoint.unknown_key"
    expected = checkpoint_signature(key=key, sequence=sequence, hash=hash, created_at=created_at)
    return None if hmac.compare_digest(expected, str(signature)) else "checkpoint.bad_signature"


def checkpoint_dir() -> Path:
    return Path(settings.BACKUP_DIR) / "audit-checkpoints"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@transaction.atomic
def checkpoint_create() -> Checkpoint | None:
    """Sign the current chain head and store it here and in BACKUP_DIR; None when nothing new.

    Raises SigningKeyMissing without AUDIT_SIGNING_KEY.
    """
    if not settings.AUDIT_SIGNING_KEY:
        raise SigningKeyMissing("AUDIT_SIGNING_KEY is not set; audit checkpoints cannot be signed")
    head = ChainHead.objects.filter(pk=1).first()
    if head is None or head.sequence == 0:
        return None
    last = Checkpoint.objects.order_by("-sequence").first()
    if last is not None and last.sequence >= head.sequence:
        return None
    created = timezone.now()
    stamp = format_time(created)
    signature = checkpoint_signature(
        key=settings.AUDIT_SIGNING_KEY, sequence=head.sequence, hash=head.hash, created_at=stamp
    )
    path = checkpoint_dir() / checkpoint_file_name(sequence=head.sequence, hash=head.hash)
    checkpoint = Checkpoint.objects.create(
        sequence=head.sequence,
        hash=head.hash,
        created_at=created,
        key_id=key_id(settings.AUDIT_SIGNING_KEY),
        signature=signature,
        location=str(path),
    )
    document = checkpoint_document(
        sequence=head.sequence,
        hash=head.hash,
        created_at=stamp,
        key_id=checkpoint.key_id,
        signature=signature,
    )
    # Written before the commit: a failed write leaves no checkpoint in the database either.
    _write_atomically(path, document)
    # A copy for the witness outside this host, sent once the checkpoint is committed.
    witness.publications_create(checkpoint=checkpoint)
    return checkpoint


def stored_checkpoints(directory: Path | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Checkpoints found in the backup location, and the files that could not be read.

    `directory`: somewhere else, such as the witness's copies; every `*.json` file below it
    counts, whatever its name, since a witness may file them its own way.
    """
    found, unreadable = [], []
    paths = sorted(directory.rglob("*.json")) if directory is not None else None
    if paths is None:
        directory = checkpoint_dir()
        paths = sorted(directory.glob("checkpoint-*.json")) if directory.is_dir() else []
    for path in paths:
        try:
            document = json.loads(path.read_text())
            found.append({**document, "sequence": int(document["sequence"]), "file": str(path)})
        except (OSError, ValueError, KeyError, TypeError):
            unreadable.append(str(path))
    return found, unreadable
