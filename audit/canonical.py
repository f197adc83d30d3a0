"""The canonical bytes of an audit event, and their hash; the bytes of a checkpoint file.

The hash must never depend on how a row happens to be read back (jsonb reorders keys, SQLite
returns text, an engine may print 1.50 as 1.5), so values are normalised once, when the event
is recorded: decimals, floats, dates and UUIDs become strings; times are UTC with microseconds;
mappings are hashed as sorted-key JSON. `scripts/verify_audit_export.py` repeats these few lines
without importing anything from Ledgerguard, on purpose: an auditor can read and run it alone.
"""

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

SCHEMA_VERSION = 1
GENESIS_HASH = "0" * 64

# The fields an event's hash covers, in the export's column order.
HASHED_FIELDS = (
    "id",
    "schema_version",
    "occurred_at",
    "actor_id",
    "actor_repr",
    "ip",
    "user_agent",
    "request_id",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "changes",
    "metadata",
    "prev_hash",
)


def format_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize(value: Any) -> Any:
    """A JSON-safe value that reads back identically from either database."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        # PostgreSQL text and jsonb refuse NUL; UTF-8 refuses lone surrogates.
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode()
    if isinstance(value, Decimal):
        return format(value, "f")  # fixed point, never 1E+2: one spelling per value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return format_time(value) if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {normalize(str(k)): normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [normalize(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return normalize(str(value))


def canonical_bytes(content: Mapping[str, Any]) -> bytes:
    return json.dumps(
        {name: content[name] for name in HASHED_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def event_hash(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(content)).hexdigest()


def content_of(event: Any) -> dict[str, Any]:
    """The hashed content of a stored event (a model instance or a values() row)."""
    get: Callable[[str], Any] = (
        event.get if isinstance(event, Mapping) else lambda name: getattr(event, name)
    )
    content = {name: get(name) for name in HASHED_FIELDS}
    content["occurred_at"] = format_time(content["occurred_at"])
    return content


def checkpoint_document(
    *, sequence: int, hash: str, created_at: str, key_id: str, signature: str
) -> bytes:
    """A signed checkpoint as written to BACKUP_DIR and sent to the witness, byte for byte."""
    document = {
        "sequence": sequence,
        "hash": hash,
        "created_at": created_at,
        "key_id": key_id,
        "signature": signature,
    }
    return json.dumps(document, sort_keys=True, indent=2).encode() + b"\n"


def checkpoint_file_name(*, sequence: int, hash: str) -> str:
    return f"checkpoint-{sequence:012d}-{hash[:12]}.json"
