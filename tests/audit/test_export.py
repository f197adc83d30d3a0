"""Exports: an auditor re-verifies them offline with scripts/verify_audit_export.py alone, any
change to the file is caught, and memory stays flat however many events go out."""

import datetime as dt
import hashlib
import io
import json
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from audit import export, selectors, services
from audit.models import AuditEvent

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_audit_export.py"


def record(n: int, **extra) -> None:
    with transaction.atomic():
        for i in range(n):
            services.audit_record(action="test.event", metadata={"i": i}, **extra)


def offline_verify(*args) -> subprocess.CompletedProcess:
    # A separate interpreter with no Django and no project on its path: the auditor's view.
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_verifies_offline_with_its_checkpoint(db, tmp_path, settings, fmt):
    record(30, object_repr='=HYPERLINK("http://evil")', object_type="x.y")
    record(1, object_repr='\'quoted\ncell, with "commas"\u00e9')
    checkpoint = services.checkpoint_create()
    out = tmp_path / f"trail.{fmt}"
    call_command("export_audit", "--format", fmt, "--output", str(out))
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    assert (manifest["from_id"], manifest["to_id"], manifest["count"]) == (1, 31, 31)
    assert manifest["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    result = offline_verify(
        out, "--checkpoint", checkpoint.location, "--key", settings.AUDIT_SIGNING_KEY
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "31 events" in result.stdout and "1 checkpoint(s) agree" in result.stdout
    if fmt == "csv":  # a spreadsheet does not run the cell as a formula
        assert "'=HYPERLINK" in out.read_text()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_line_separators_inside_values_do_not_break_offline_verification(db, tmp_path, fmt):
    # Anyone can plant these: a failed login's username goes into the trail as typed.
    record(1, object_repr="a\u2028b\u2029c\x85d\re\nf")
    record(1)
    out = tmp_path / f"odd.{fmt}"
    call_command("export_audit", "--format", fmt, "--output", str(out))
    result = offline_verify(out)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_manifest_is_a_clear_failure_not_a_traceback(db, tmp_path):
    record(2)
    out = tmp_path / "trail.csv"
    call_command("export_audit", "--format", "csv", "--output", str(out))
    out.with_name(out.name + ".manifest.json").write_text("{}")
    result = offline_verify(out)
    assert result.returncode == 1 and "cannot be read" in result.stdout
    assert "Traceback" not in result.stderr


def test_any_change_to_an_export_is_caught(db, tmp_path):
    record(10)
    out = tmp_path / "trail.jsonl"
    call_command("export_audit", "--format", "jsonl", "--output", str(out))
    manifest_path = out.with_name(out.name + ".manifest.json")
    original = out.read_bytes()

    out.write_bytes(original.replace(b'"i":3', b'"i":4'))
    assert "SHA-256 differs" in offline_verify(out).stdout

    # The forger also fixes the manifest's digest: the row's own hash gives it away.
    def forge(data: bytes, **changes) -> str:
        out.write_bytes(data)
        manifest = json.loads(manifest_path.read_text())
        manifest.update(sha256=hashlib.sha256(data).hexdigest(), **changes)
        manifest_path.write_text(json.dumps(manifest))
        result = offline_verify(out)
        assert result.returncode == 1
        return result.stdout

    assert "event #4 does not match its hash" in forge(original.replace(b'"i":3', b'"i":4'))
    lines = original.splitlines(keepends=True)
    assert "expected event #5, found #6" in forge(b"".join(lines[:4] + lines[5:]), count=9)


def test_a_time_window_is_one_contiguous_run_of_events(db, tmp_path):
    record(3)
    middle = dt.datetime.now(dt.UTC)
    record(4)
    r = export.export_range(since=middle)
    assert (r.from_id, r.to_id) == (4, 7)
    r = export.export_range(until=middle)
    assert (r.from_id, r.to_id) == (1, 3)
    out = tmp_path / "late.csv"
    call_command(
        "export_audit", "--format", "csv", "--since", middle.isoformat(), "--output", str(out)
    )
    assert offline_verify(out).returncode == 0


def test_an_empty_window_exports_an_empty_verifiable_file(db, tmp_path):
    record(2)
    out = tmp_path / "none.jsonl"
    call_command("export_audit", "--since", "2999-01-01", "--output", str(out))
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    assert manifest["count"] == 0 and out.read_bytes() == b""


def test_every_export_is_itself_an_audit_event(db, tmp_path):
    record(2)
    call_command("export_audit", "--format", "csv", "--output", str(tmp_path / "a.csv"))
    event = AuditEvent.objects.filter(action="audit.exported").get()
    assert event.metadata["count"] == 2 and event.metadata["format"] == "csv"
    assert event.metadata["sha256"] == hashlib.sha256((tmp_path / "a.csv").read_bytes()).hexdigest()


def test_the_zip_stream_holds_the_file_and_its_manifest(db, tmp_path):
    record(5)
    r = export.export_range()
    path = tmp_path / "trail.zip"
    path.write_bytes(b"".join(export.export_zip_stream(fmt="csv", r=r)))
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == [
            "audit-000000000001-000000000005.csv",
            "audit-000000000001-000000000005.csv.manifest.json",
        ]
    assert offline_verify(path).returncode == 0


def _peak_export_memory(r: export.ExportRange) -> int:
    sink = io.BytesIO()
    tracemalloc.start()
    try:
        for chunk in export.export_chunks(export.Manifest(format="jsonl", file="x", range=r)):
            sink.write(chunk)
            sink.seek(0)
            sink.truncate()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_exports_stream_in_constant_memory(db, monkeypatch):
    monkeypatch.setattr(selectors, "CHUNK", 500)  # rows read per query (5,000 in production)
    for _ in range(12):
        record(1000)
    small = _peak_export_memory(export.ExportRange(from_id=1, to_id=1500))
    large = _peak_export_memory(export.ExportRange(from_id=1, to_id=12000))
    # Ten times the events, about the same peak: chunks of rows, never the whole export.
    assert large < small * 1.5, (small, large)
