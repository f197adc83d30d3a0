"""The forensics API's export: a zip that verifies offline, every download an audit event
itself, windows and ranges, auditors only, documented as a binary download."""

import importlib.util
import io
import zipfile
from pathlib import Path

import pytest
import yaml

from audit.models import AuditEvent
from tests.audit.factories import AuditEventFactory
from tests.audit.helpers import assert_error

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_audit_export.py"


def load_verifier():
    spec = importlib.util.spec_from_file_location("verify_audit_export", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Export -------------------------------------------------------------------------------------


def download(client, **params) -> tuple[object, bytes]:
    response = client.get("/api/v1/audit/export/", params)
    assert response.status_code == 200, getattr(response, "content", b"")
    return response, b"".join(response.streaming_content)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_auditor_exports_a_zip_that_verifies_offline(api, auditor, clerk, tmp_path, capsys, fmt):
    for i in range(6):
        AuditEventFactory(
            action="test.thing", actor=clerk, object_repr='=cmd|" /C calc"!A0', metadata={"i": i}
        )
    response, data = download(api.as_user(auditor), format=fmt)
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="audit-1-6-{fmt}.zip"'
    path = tmp_path / f"export.{fmt}.zip"
    path.write_bytes(data)
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
    member = f"audit-000000000001-000000000006.{fmt}"
    assert names == [member, f"{member}.manifest.json"]

    verifier = load_verifier()
    assert verifier.main([str(path)]) == 0
    assert "OK: 6 events #1 to #6" in capsys.readouterr().out

    # One byte changed in the exported file, the manifest left alone: caught.
    with zipfile.ZipFile(path) as archive:
        original = archive.read(member)
        manifest = archive.read(f"{member}.manifest.json")
    at = original.index(b"test.thing")
    forged = original[:at] + b"T" + original[at + 1 :]
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as archive:
        archive.writestr(member, forged)
        archive.writestr(f"{member}.manifest.json", manifest)
    assert verifier.main([str(tampered)]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_every_download_is_itself_an_audit_event(api, auditor):
    AuditEventFactory.create_batch(3)
    download(api.as_user(auditor), format="csv")
    event = AuditEvent.objects.get(action="audit.exported")
    assert event.actor_id == auditor.pk and event.id == 4  # after the range it exported
    assert event.object_repr == "events #1 to #3" and event.metadata["count"] == 3
    assert (event.metadata["format"], event.metadata["via"]) == ("csv", "api")


def test_an_export_of_a_window_or_a_range(api, auditor, tmp_path):
    events = [AuditEventFactory(action=f"test.thing.{i}") for i in range(6)]
    client = api.as_user(auditor)
    response, _ = download(client, from_id=2, to_id=4)
    assert response["Content-Disposition"] == 'attachment; filename="audit-2-4-jsonl.zip"'
    since = events[3].occurred_at
    response, data = download(client, since=since.isoformat(), format="csv")
    first = AuditEvent.objects.filter(occurred_at__gte=since).order_by("id").first().id
    assert f"audit-{first}-" in response["Content-Disposition"]
    path = tmp_path / "window.zip"
    path.write_bytes(data)
    assert load_verifier().main([str(path)]) == 0


def test_an_empty_window_is_an_empty_verifiable_export(api, auditor, tmp_path):
    AuditEventFactory()
    _, data = download(api.as_user(auditor), since="2999-01-01")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        manifest = next(n for n in archive.namelist() if n.endswith(".manifest.json"))
        assert b'"count": 0' in archive.read(manifest)


@pytest.mark.parametrize("role", ["finance_clerk", "finance_approver", "operator", "admin"])
def test_only_auditors_export(api, make_user, role):
    AuditEventFactory()
    response = api.as_user(make_user(role)).get("/api/v1/audit/export/", {"format": "csv"})
    assert_error(response, 403, "permission_denied")
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_the_export_is_documented_as_a_binary_download(client, db):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    export = schema["paths"]["/api/v1/audit/export/"]["get"]
    assert export["responses"]["200"]["content"]["application/zip"]["schema"] == {
        "type": "string",
        "format": "binary",
    }
    assert {p["name"] for p in export["parameters"]} >= {
        "format",
        "since",
        "until",
        "from_id",
        "to_id",
    }
    events = schema["paths"]["/api/v1/audit/events/"]
    assert set(events) == {"get"}
    names = {p["name"] for p in events["get"]["parameters"]}
    assert names >= {"cursor", "page_size", "actor", "action_prefix", "since"}
