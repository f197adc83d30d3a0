"""Exports of the audit trail: CSV or JSON lines, with a manifest an auditor re-verifies offline.

An export is a contiguous run of events (ids `from_id`..`to_id`), so it carries its own proof:
each row holds the hashed content and the hash, the manifest names the hash before the first
row, and `scripts/verify_audit_export.py` recomputes the chain from the file alone. Output is
deterministic: the same range gives the same bytes. Rows are read in keyset chunks and written
as they come, so memory stays flat for any number of events.

CSV cells that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage
return) get a leading apostrophe, as do cells that already start with one; the verifier strips
exactly one. JSON columns hold canonical JSON.
"""

import csv
import datetime as dt
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.db.models import Max, Min
from django.utils import timezone

from audit.canonical import GENESIS_HASH, HASHED_FIELDS, SCHEMA_VERSION, content_of, format_time
from audit.exceptions import ExportError
from audit.models import AuditEvent, ChainHead
from audit.selectors import event_rows
from audit.services import audit_record

FORMATS = ("csv", "jsonl")
COLUMNS = (*HASHED_FIELDS, "hash")
_FORMULA = ("=", "+", "-", "@", "\t", "\r", "'")


@dataclass
class ExportRange:
    from_id: int
    to_id: int
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @property
    def count(self) -> int:
        return max(self.to_id - self.from_id + 1, 0)


def export_range(
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    from_id: int | None = None,
    to_id: int | None = None,
) -> ExportRange:
    """The ids an export covers, pinned now: events appended later are not part of it.

    `since` is inclusive and `until` exclusive. Event times never decrease along the chain, so a
    time window is one contiguous run of ids.
    """
    head = ChainHead.objects.filter(pk=1).values_list("sequence", flat=True).first() or 0
    qs = AuditEvent.objects.filter(id__lte=head)
    if since is not None:
        qs = qs.filter(occurred_at__gte=since)
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    if from_id is not None:
        qs = qs.filter(id__gte=from_id)
    if to_id is not None:
        qs = qs.filter(id__lte=to_id)
    bounds = qs.aggregate(first=Min("id"), last=Max("id"))
    if bounds["first"] is None:
        return ExportRange(
            from_id=(from_id or head + 1), to_id=(from_id or head + 1) - 1, since=since, until=until
        )
    return ExportRange(from_id=bounds["first"], to_id=bounds["last"], since=since, until=until)


def _jsonl(row: dict[str, Any]) -> bytes:
    line = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return line.encode() + b"\n"


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _csv_line(values: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode()


@dataclass
class Manifest:
    format: str
    file: str
    range: ExportRange
    prev_hash: str = GENESIS_HASH
    first_hash: str | None = None
    last_hash: str | None = None
    count: int = 0
    sha256: str = ""
    generated_at: str = field(default_factory=lambda: format_time(timezone.now()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "manifest_version": 1,
            "schema_version": SCHEMA_VERSION,
            "format": self.format,
            "file": self.file,
            "from_id": self.range.from_id if self.count else None,
            "to_id": self.range.to_id if self.count else None,
            "since": format_time(self.range.since) if self.range.since else None,
            "until": format_time(self.range.until) if self.range.until else None,
            "count": self.count,
            "prev_hash": self.prev_hash if self.count else None,
            "first_hash": self.first_hash,
            "last_hash": self.last_hash,
            "sha256": self.sha256,
            "generated_at": self.generated_at,
        }


def export_chunks(manifest: Manifest) -> Iterator[bytes]:
    """The export file's bytes, piece by piece; fills in `manifest` as it goes."""
    digest = hashlib.sha256()
    r = manifest.range
    if r.from_id > 1:
        before = AuditEvent.objects.filter(id=r.from_id - 1).values_list("hash", flat=True)
        manifest.prev_hash = before.first() or GENESIS_HASH
    buffer: list[bytes] = []
    if manifest.format == "csv":
        buffer.append(_csv_line(list(COLUMNS)))
    for row in event_rows(r.from_id, r.to_id) if r.count else ():
        content = content_of(row)
        content["hash"] = row["hash"]
        manifest.first_hash = manifest.first_hash or row["hash"]
        manifest.last_hash = row["hash"]
        manifest.count += 1
        if manifest.format == "jsonl":
            buffer.append(_jsonl(content))
        else:
            buffer.append(_csv_line([_csv_cell(content[c]) for c in COLUMNS]))
        if len(buffer) >= 1000:
            data = b"".join(buffer)
            buffer.clear()
            digest.update(data)
            yield data
    data = b"".join(buffer)
    digest.update(data)
    manifest.sha256 = digest.hexdigest()
    if data:
        yield data


def export_filename(fmt: str, r: ExportRange) -> str:
    return f"audit-{r.from_id:012d}-{r.to_id:012d}.{fmt}"


def _manifest(fmt: str, r: ExportRange) -> Manifest:
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {FORMATS}")
    return Manifest(format=fmt, file=export_filename(fmt, r), range=r)


def _record_export(r: ExportRange, *, actor: Any, metadata: dict[str, Any]) -> None:
    audit_record(
        action="audit.exported",
        object_type="audit.auditevent",
        object_repr=f"events #{r.from_id} to #{r.to_id}",
        actor=actor,
        metadata=metadata,
    )


def audit_export(
    *, fmt: str, r: ExportRange, out: BinaryIO, actor: Any = None, via: str = "command"
) -> dict[str, Any]:
    """Write an export to `out`; record it in the trail; return its manifest."""
    manifest = _manifest(fmt, r)
    for chunk in export_chunks(manifest):
        out.write(chunk)
    result = manifest.as_dict()
    _record_export(r, actor=actor, metadata={**result, "via": via})
    return result


class _Sink(io.RawIOBase):
    """A write-only stream that hands what was written to a generator."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def drain(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def export_zip_stream(
    *, fmt: str, r: ExportRange, actor: Any = None, via: str = "api"
) -> Iterator[bytes]:
    """A zip of the export file and its manifest, streamed as it is made (the API's download,
    and the audit dashboard's: `via` says which).

    The export is recorded in the trail before the first byte goes out.
    """
    manifest = _manifest(fmt, r)
    # Recorded before the first byte goes out, so the hashes come from the rows themselves
    # (three lookups by id); the file's SHA-256 is only known at the end: it is in the zip.
    planned: dict[str, Any] = {
        "from_id": None,
        "to_id": None,
        "prev_hash": None,
        "first_hash": None,
        "last_hash": None,
        "count": r.count,
    }
    if r.count:
        ids = [r.from_id - 1, r.from_id, r.to_id]
        hashes = dict(AuditEvent.objects.filter(id__in=ids).values_list("id", "hash"))
        planned.update(
            from_id=r.from_id,
            to_id=r.to_id,
            first_hash=hashes.get(r.from_id),
            last_hash=hashes.get(r.to_id),
            prev_hash=hashes.get(r.from_id - 1, GENESIS_HASH),
        )
    metadata = {**manifest.as_dict(), **planned, "via": via}
    metadata.pop("sha256")
    _record_export(r, actor=actor, metadata=metadata)

    def generate() -> Iterator[bytes]:
        sink = _Sink()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            with archive.open(manifest.file, "w", force_zip64=True) as member:
                for chunk in export_chunks(manifest):
                    member.write(chunk)
                    yield sink.drain()
            yield sink.drain()
            body = json.dumps(manifest.as_dict(), sort_keys=True, indent=2).encode() + b"\n"
            archive.writestr(manifest.file + ".manifest.json", body)
        yield sink.drain()

    return generate()
