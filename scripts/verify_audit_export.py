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
import csv
import hashlib
import hmac
import io
import json
import sys
import zipfile
from pathlib import Path

HASHED_FIELDS = (
    "id", "schema_version", "occurred_at", "actor_id", "actor_repr", "ip", "user_agent",
    "request_id", "action", "object_type", "object_id", "object_repr", "changes", "metadata",
    "prev_hash",
)  # fmt: skip
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


def rows(data: bytes, fmt: str):
    text = data.decode("utf-8")
    if fmt == "jsonl":
        for line in text.splitlines():
            if line:
                yield json.loads(line)
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    for cells in reader:
        yield {name: csv_value(name, cell) for name, cell in zip(header, cells, strict=True)}


def load(path: Path, manifest_path: Path | None) -> tuple[bytes, dict]:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            manifest_name = next(n for n in names if n.endswith(".manifest.json"))
            manifest = json.loads(archive.read(manifest_name))
            return archive.read(manifest["file"]), manifest
    manifest_path = manifest_path or path.with_name(path.name + ".manifest.json")
    return path.read_bytes(), json.loads(manifest_path.read_text())


def verify(data: bytes, manifest: dict, checkpoints: list[dict], key: str | None) -> list[str]:
    if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        return ["the file's SHA-256 differs from the manifest: the file was changed"]
    expected_id, prev, count, first, by_id = manifest["from_id"], manifest["prev_hash"], 0, None, {}
    for row in rows(data, manifest["format"]):
        if row["id"] != expected_id:
            found = row["id"]
            return [f"expected event #{expected_id}, found #{found}: events missing or reordered"]
        if row["prev_hash"] != prev:
            return [f"event #{row['id']} does not link to the event before it"]
        if canonical_hash(row) != row["hash"]:
            return [f"event #{row['id']} does not match its hash: its content was changed"]
        first = first or row["hash"]
        prev, expected_id, count = row["hash"], expected_id + 1, count + 1
        by_id[row["id"]] = row["hash"]
    if count != manifest["count"]:
        return [f"the file holds {count} events, the manifest says {manifest['count']}"]
    if count and (first != manifest["first_hash"] or prev != manifest["last_hash"]):
        return ["the first or last hash differs from the manifest"]
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
    data, manifest = load(args.export, args.manifest)
    checkpoints = [json.loads(p.read_text()) for p in args.checkpoint]
    problems = verify(data, manifest, checkpoints, args.key)
    if problems:
        for problem in problems:
            print(f"FAILED: {problem}")
        return 1
    covered = sum(1 for cp in checkpoints if manifest["count"] and
                  manifest["from_id"] <= int(cp["sequence"]) <= manifest["to_id"])  # fmt: skip
    print(
        f"OK: {manifest['count']} events #{manifest['from_id']} to #{manifest['to_id']}, "
        f"chain intact, last hash {manifest['last_hash']}, {covered} checkpoint(s) agree"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
