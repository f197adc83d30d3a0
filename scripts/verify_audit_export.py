#!/usr/bin/env python3
"""Verify a Ledgerguard audit export offline, with nothing but Python 3.11's standard library.

    python3 verify_audit_export.py EXPORT [--manifest M] [--checkpoint FILE ...] [--key KEY]

EXPORT is the .csv or .jsonl file (its manifest is EXPORT.manifest.json unless --manifest says
otherwise) or the .zip the API returns. The script checks that:

1. the file's SHA-256 is the one in the manifest;
2. the rows are events from_id..to_id with no gap, and the count, first and last hash match;
3. every row's hash is the SHA-256 of its canonical content (sorted-key compact JSON, UTF-8, of
   the fields listed in HASHED_FIELDS), and each row's prev_hash is the previous row's hash,
   starting from the manifest's prev_hash;
4. optionally, that signed checkpoint files (from the backup location) agree with the rows
   they fall on, and with --key (AUDIT_SIGNING_KEY) that their signatures are valid.

Exit status 0 when everything holds, 1 with the first problem otherwise. This file imports
nothing from Ledgerguard on purpose: read it, then trust it.
"""

import argparse
import contextlib
import csv
import hashlib
import hmac
import io
import json
import sys
import typing
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
INT_FIELDS = {"id", "schema_version", "actor_id"}
NULLABLE = {"actor_id", "ip"}
JSON_FIELDS = {"changes", "metadata"}


def canonical_hash(content: dict) -> str:
    body = {name: content[name] for name in HASHED_FIELDS}
    data = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(data).hexdigest()


def csv_value(name: str, cell: str):
    if cell.startswith("'"):  # spreadsheet-formula guard added by the export
        cell = cell[1:]
    if cell == "" and name in NULLABLE:
        return None
    if name in INT_FIELDS:
        return int(cell)
    if name in JSON_FIELDS:
        return json.loads(cell)
    return cell


class HashingReader(io.RawIOBase):
    """Reads a file once, in pieces, hashing every byte on the way: constant memory."""

    def __init__(self, raw) -> None:
        self.raw, self.digest = raw, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)


def rows(stream: typing.BinaryIO, fmt: str) -> Iterator[dict[str, Any]]:
    if fmt == "jsonl":
        # Binary lines end at b"\n" only: U+2028 and friends inside a value are not breaks.
        for line in stream:
            if line.strip():
                yield json.loads(line)
        return
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    try:
        reader = csv.reader(text)
        header = next(reader, None) or []
        for cells in reader if header else ():
            if len(cells) != len(header):
                raise ValueError(f"a CSV row has {len(cells)} cells, the header {len(header)}")
            yield {name: csv_value(name, cell) for name, cell in zip(header, cells, strict=True)}
    finally:
        text.detach()  # leave the byte stream open: the digest still needs its end


def open_export(path: Path, manifest_path: Path | None, stack: contextlib.ExitStack):
    """The manifest, and the export file opened for reading (inside a zip or beside it)."""
    if path.suffix == ".zip":
        archive = stack.enter_context(zipfile.ZipFile(path))
        manifest_name = next(n for n in archive.namelist() if n.endswith(".manifest.json"))
        manifest = json.loads(archive.read(manifest_name))
        return manifest, stack.enter_context(archive.open(manifest["file"]))
    manifest_path = manifest_path or path.with_name(path.name + ".manifest.json")
    return json.loads(manifest_path.read_text()), stack.enter_context(path.open("rb"))


def verify(raw, manifest: dict, checkpoints: list[dict], key: str | None) -> list[str]:
    reader = HashingReader(raw)
    stream = io.BufferedReader(reader, buffer_size=1 << 20)
    expected_id, prev, count, first, by_id = manifest["from_id"], manifest["prev_hash"], 0, None, {}
    wanted = {int(cp["sequence"]) for cp in checkpoints}
    broken, last_time = None, None
    for row in rows(typing.cast(typing.BinaryIO, stream), manifest["format"]):
        if broken is None:
            if row["id"] != expected_id:
                found = row["id"]
                broken = (
                    f"expected event #{expected_id}, found #{found}: events missing or reordered"
                )
            elif row["prev_hash"] != prev:
                broken = f"event #{row['id']} does not link to the event before it"
            elif canonical_hash(row) != row["hash"]:
                broken = f"event #{row['id']} does not match its hash: its content was changed"
            elif last_time is not None and row["occurred_at"] < last_time:
                # Fixed-width UTC times compare as strings; appending never goes back in time.
                broken = f"event #{row['id']} is dated before the event before it: re-dated"
        first = first or row["hash"]
        prev, expected_id, count = row["hash"], expected_id + 1 if expected_id else None, count + 1
        last_time = row["occurred_at"]
        if row["id"] in wanted:
            by_id[row["id"]] = row["hash"]
    stream.read()  # to the end, so that the digest covers every byte
    if reader.digest.hexdigest() != manifest["sha256"]:
        return ["the file's SHA-256 differs from the manifest: the file was changed"]
    if broken:
        return [broken]
    if count != manifest["count"]:
        return [f"the file holds {count} events, the manifest says {manifest['count']}"]
    if count and (first != manifest["first_hash"] or prev != manifest["last_hash"]):
        return ["the first or last hash differs from the manifest"]
    if count and expected_id - 1 != manifest["to_id"]:
        return [f"the file ends at #{expected_id - 1}, the manifest says #{manifest['to_id']}"]
    problems = []
    for cp in checkpoints:
        seq = int(cp["sequence"])
        if key is not None:
            message = f"ledgerguard-audit-checkpoint|v1|{seq}|{cp['hash']}|{cp['created_at']}"
            good = hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(good, cp["signature"]):
                problems.append(f"checkpoint at #{seq} has an invalid signature")
        if seq in by_id and by_id[seq] != cp["hash"]:
            problems.append(f"event #{seq} differs from the signed checkpoint at #{seq}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("--manifest", type=Path)
    parser.add_argument("--checkpoint", type=Path, action="append", default=[])
    parser.add_argument("--key", help="AUDIT_SIGNING_KEY, to check checkpoint signatures")
    args = parser.parse_args(argv)
    try:
        with contextlib.ExitStack() as stack:
            manifest, raw = open_export(args.export, args.manifest, stack)
            checkpoints = [json.loads(p.read_text()) for p in args.checkpoint]
            problems = verify(raw, manifest, checkpoints, args.key)
    except (OSError, ValueError, KeyError, TypeError, StopIteration, zipfile.BadZipFile) as exc:
        problems = [f"the export or its manifest cannot be read: {exc!r}"]
    if problems:
        for problem in problems:
            print(f"FAILED: {problem}")
        return 1
    covered = sum(
        1
        for cp in checkpoints
        if manifest["count"] and manifest["from_id"] <= int(cp["sequence"]) <= manifest["to_id"]
    )
    print(
        f"OK: {manifest['count']} events #{manifest['from_id']} to #{manifest['to_id']}, "
        f"chain intact, last hash {manifest['last_hash']}, {covered} checkpoint(s) agree"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
