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
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from json.encoder import encode_basestring as _encode_string
from json.scanner import make_scanner
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


# The fast reader (audit/chainwalk.py) --------------------------------------------------------
#
# canonical_bytes builds a dict and lets json sort and encode it: general, and several times
# the cost of the hash itself. A row read from PostgreSQL (binary results, ROW_COLUMNS in that
# order) has a fixed shape, so its bytes are spelled by one template in json's key order, each
# string by json's own encoder, each jsonb value parsed and re-encoded by json's C scanner and
# encoder with canonical_bytes' settings. tests/audit/test_canonical_rows.py holds the two
# spellings to the same bytes over odd values; canonical_bytes stays the definition.

ROW_COLUMNS = (*HASHED_FIELDS, "hash")
# PostgreSQL's binary timestamp: microseconds since this moment (read as a plain int8).
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_ROW_TEMPLATE = (
    '{"action":%s,"actor_id":%s,"actor_repr":%s,"changes":%s,"id":%d,"ip":%s,"metadata":%s,'
    '"object_id":%s,"object_repr":%s,"object_type":%s,"occurred_at":"%s.%06dZ",'
    '"prev_hash":%s,"request_id":%s,"schema_version":%d,"user_agent":%s}'
)
JSON_CACHE_SIZE = 4096  # distinct jsonb texts remembered (short ones only): bounded memory
JSON_CACHE_MAX_CHARS = 256

# json.loads' own scanner (a fresh decoder has json.loads' defaults); strings are encoded by what
# json.dumps uses with ensure_ascii=False.
_scan = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed types it as a class


def _make_value_encoder() -> Callable[[Any], str]:
    """json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) without
    the per-call set-up of json.dumps (which builds a new C encoder on every call)."""
    settings = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    c_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_encoder is None:  # a Python without json's C accelerator
        return settings.encode
    chunks = c_encoder(None, settings.default, _encode_string, None, ":", ",", True, False, True)
    return lambda value: "".join(chunks(value, 0))


_encode_value = _make_value_encoder()


def micros_time(micros: int) -> dt.datetime:
    """The moment of a PostgreSQL binary timestamp; OverflowError beyond Python's years, where
    reading the row through the ORM fails too."""
    return PG_EPOCH + dt.timedelta(microseconds=micros)


def micros_of(moment: dt.datetime) -> int:
    """The inverse of micros_time, exactly (integer arithmetic on timedeltas)."""
    return (moment - PG_EPOCH) // dt.timedelta(microseconds=1)


class RowCanonicalizer:
    """canonical_bytes of a row in ROW_COLUMNS order as PostgreSQL's binary results carry it:
    ints, text, occurred_at as micros since PG_EPOCH, changes and metadata as jsonb's text
    after its version byte. Byte for byte canonical_bytes(content_of(the row via the ORM)).

    It remembers the last day and second it spelled (events come in time order) and short
    jsonb texts it has seen (`{}`, repeated changes): bounded, so memory stays constant.
    """

    def __init__(self) -> None:
        self._day: int | None = None
        self._second: int | None = None
        self._date = self._clock = ""
        self._json: dict[str, str] = {}

    def clock(self, second: int) -> str:
        """format_time's "YYYY-MM-DDTHH:MM:SS" of a second since PG_EPOCH."""
        if second != self._second:
            day, rest = divmod(second, 86400)
            if day != self._day:
                # format_time spells the date (strftime's own %Y); "HH:MM:SS.ffffffZ" is 16.
                self._day, self._date = day, format_time(micros_time(day * 86400_000_000))[:-16]
            hours, rest = divmod(rest, 3600)
            minutes, seconds = divmod(rest, 60)
            self._second, self._clock = (
                second,
                f"{self._date}{hours:02d}:{minutes:02d}:{seconds:02d}",
            )
        return self._clock

    def json(self, value: str) -> str:
        """The canonical JSON of a jsonb value in its binary form (version byte 1, text)."""
        known = self._json.get(value)
        if known is not None:
            return known
        if value[:1] != "\x01":
            raise ValueError(f"unknown jsonb binary format {value[:1]!r}")
        try:
            parsed, end = _scan(value, 1)
        except StopIteration:
            end = -1
        if end != len(value):  # never from jsonb's output; json.loads decides what it means
            parsed = json.loads(value[1:])
        text = _encode_value(parsed)
        if len(value) <= JSON_CACHE_MAX_CHARS and len(self._json) < JSON_CACHE_SIZE:
            self._json[value] = text
        return text

    def content(self, row: Sequence[Any]) -> dict[str, Any]:
        """The row as content_of gives it, for canonical_bytes itself."""
        content = dict(zip(HASHED_FIELDS, row, strict=False))
        content["occurred_at"] = format_time(micros_time(row[2]))
        for name in ("changes", "metadata"):
            value = content[name]
            content[name] = None if value is None else json.loads(value[1:])
        return content

    def __call__(self, row: Sequence[Any]) -> bytes:
        (
            event_id,
            version,
            micros,
            actor_id,
            actor_repr,
            ip,
            user_agent,
            request_id,
            action,
            object_type,
            object_id,
            object_repr,
            changes,
            metadata,
            prev_hash,
            _hash,
        ) = row
        try:
            # Nearly every row's strings need no escaping: json's own encoder looks at all of
            # them at once, and only adds the two quotes when there is nothing to escape.
            plain = "".join(
                (
                    action,
                    actor_repr,
                    object_id,
                    object_repr,
                    object_type,
                    prev_hash,
                    request_id,
                    user_agent,
                    ip or "",
                )
            )
            if event_id is None or version is None:
                raise TypeError("NULL id or schema_version")
            if len(_encode_string(plain)) != len(plain) + 2:
                return self._escaped(row)
            second, micro = divmod(micros, 1_000_000)
            address = "null" if ip is None else f'"{ip}"'
            text = (
                f'{{"action":"{action}","actor_id":{"null" if actor_id is None else actor_id},'
                f'"actor_repr":"{actor_repr}","changes":{self.json(changes)},"id":{event_id},'
                f'"ip":{address},'
                f'"metadata":{self.json(metadata)},"object_id":"{object_id}",'
                f'"object_repr":"{object_repr}","object_type":"{object_type}",'
                f'"occurred_at":"{self.clock(second)}.{micro:06d}Z","prev_hash":"{prev_hash}",'
                f'"request_id":"{request_id}","schema_version":{version},'
                f'"user_agent":"{user_agent}"}}'
            )
        except TypeError:  # a NULL where the schema says NOT NULL: the generic spelling
            return canonical_bytes(self.content(row))
        return text.encode()

    def _escaped(self, row: Sequence[Any]) -> bytes:
        """A row with a string json must escape: each string through json's own encoder."""
        (event_id, version, micros, actor_id, actor_repr, ip, user_agent, request_id) = row[:8]
        (action, object_type, object_id, object_repr, changes, metadata, prev_hash) = row[8:15]
        second, micro = divmod(micros, 1_000_000)
        text = _ROW_TEMPLATE % (
            _encode_string(action),
            "null" if actor_id is None else actor_id,
            _encode_string(actor_repr),
            self.json(changes),
            event_id,
            "null" if ip is None else _encode_string(ip),
            self.json(metadata),
            _encode_string(object_id),
            _encode_string(object_repr),
            _encode_string(object_type),
            self.clock(second),
            micro,
            _encode_string(prev_hash),
            _encode_string(request_id),
            version,
            _encode_string(user_agent),
        )
        return text.encode()
