"""The forensics API: filters, timelines, activity reports, cursors that hold while the trail
grows, scoping for people who may only see their own events, verification and export."""

import base64
import importlib.util
import io
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import yaml
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit import selectors, services, tasks
from audit.models import AuditEvent, Verification
from config.pagination import IdCursorPagination
from tests.audit.factories import AuditEventFactory
from tests.audit.helpers import rewrite_chain, tamper

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_audit_export.py"
EVENTS = "/api/v1/audit/events/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def all_pages(client, url: str, *, between=None) -> list[int]:
    """Every id, following `next`; `between(page_number)` runs between two fetches."""
    seen, page = [], 0
    while url:
        response = client.get(url)
        seen += ids(response)
        url = response.json()["next"]
        page += 1
        if url and between is not None:
            between(page)
    return seen


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert set(body["error"]) == {"code", "message", "fields"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def load_verifier():
    spec = importlib.util.spec_from_file_location("verify_audit_export", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Filters ------------------------------------------------------------------------------------


def test_every_filter_narrows_the_list(api, auditor, clerk, approver):
    entry = {"object_type": "finance.journalentry", "object_id": 7}
    first = AuditEventFactory(
        action="journal_entry.created",
        actor=clerk,
        object_repr="JE 7",
        request_id="req-a",
        ip="203.0.113.1",
        **entry,
    )
    second = AuditEventFactory(
        action="journal_entry.approved", actor=approver, request_id="req-b", **entry
    )
    third = AuditEventFactory(
        action="auth.login", actor=clerk, object_type="auth.user", object_id=clerk.pk
    )
    client = api.as_user(auditor)

    def listed(**params) -> list[int]:
        return ids(client.get(EVENTS, params))

    assert listed() == [third.id, second.id, first.id]
    assert listed(actor=clerk.pk) == [third.id, first.id]
    assert listed(actor_repr="APPROV") == [second.id]
    assert listed(action="journal_entry.created") == [first.id]
    assert listed(action="journal_entry") == []  # exact
    assert listed(action_prefix="journal_entry.") == [second.id, first.id]
    assert listed(object_type="finance.journalentry", object_id="7") == [second.id, first.id]
    assert listed(object_type="auth.user") == [third.id]
    assert listed(request_id="req-b") == [second.id]
    assert listed(actor=clerk.pk, action_prefix="auth.") == [third.id]


def test_since_is_inclusive_and_until_exclusive(api, auditor):
    events = [AuditEventFactory(action=f"test.thing.{i}") for i in range(4)]
    cut = events[2].occurred_at
    client = api.as_user(auditor)
    stored = AuditEvent.objects.order_by("-id")
    since = ids(client.get(EVENTS, {"since": cut.isoformat()}))
    until = ids(client.get(EVENTS, {"until": cut.isoformat()}))
    assert since == [e.id for e in stored if e.occurred_at >= cut] and events[2].id in since
    assert until == [e.id for e in stored if e.occurred_at < cut] and events[2].id not in until
    assert sorted(since + until) == sorted(e.id for e in stored)
    # A plain date means its midnight, UTC.
    assert ids(client.get(EVENTS, {"until": "2000-01-01"})) == []


def test_an_event_is_read_with_everything_it_holds(api, auditor, clerk):
    event = AuditEventFactory(
        action="test.thing",
        actor=clerk,
        object_type="x.y",
        object_id="1",
        changes={"name": ["old", "new"]},
        metadata={"why": "because"},
    )
    body = api.as_user(auditor).get(f"{EVENTS}{event.id}/").json()
    assert body["id"] == event.id and body["actor_id"] == clerk.pk
    assert body["changes"] == {"name": ["old", "new"]} and body["metadata"] == {"why": "because"}
    assert (body["prev_hash"], body["hash"]) == (event.prev_hash, event.hash)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_events_cannot_be_written_through_the_api(api, auditor, admin_user, method):
    event = AuditEventFactory()
    for user in (auditor, admin_user):
        client = api.as_user(user)
        assert getattr(client, method)(EVENTS, {"action": "x"}).status_code == 405
        assert getattr(client, method)(f"{EVENTS}{event.id}/", {"action": "x"}).status_code == 405
    assert AuditEvent.objects.get(id=event.id).action == "test.thing"


def test_the_list_costs_the_same_queries_for_any_number_of_events(api, auditor, clerk):
    client = api.as_user(auditor)
    AuditEventFactory(actor=clerk)
    client.get(EVENTS)  # loads the user's permissions once
    with CaptureQueriesContext(connection) as few:
        assert len(ids(client.get(EVENTS))) == 1
    AuditEventFactory.create_batch(30, actor=clerk)
    with CaptureQueriesContext(connection) as many:
        assert len(ids(client.get(EVENTS))) == 31
    assert len(many) == len(few), [q["sql"] for q in many]


# Cursor pagination --------------------------------------------------------------------------


def test_the_cursor_neither_repeats_nor_skips_while_events_are_appended(api, auditor):
    for i in range(25):
        AuditEventFactory(action=f"test.before.{i}")
    existing = list(AuditEvent.objects.order_by("-id").values_list("id", flat=True))
    client = api.as_user(auditor)

    def append(page: int) -> None:
        for i in range(7):
            AuditEventFactory(action=f"test.during.{page}.{i}")

    seen = all_pages(client, f"{EVENTS}?page_size=10", between=append)
    assert seen == existing  # newest first, exactly the events there were at the first fetch
    # The new events are at the front, where a fresh first page finds them.
    newest = ids(client.get(EVENTS, {"page_size": 10}))
    assert newest[0] == AuditEvent.objects.order_by("-id").first().id


def test_the_page_size_is_capped(api, auditor, monkeypatch):
    assert IdCursorPagination.max_page_size == 500
    # Shown with a smaller cap: 500 rows written and rolled back here let PostgreSQL's
    # autovacuum reorder the heap, which the raw renumbering in test_chain.py trips over.
    monkeypatch.setattr(IdCursorPagination, "max_page_size", 5)
    for i in range(8):
        AuditEventFactory(action=f"test.thing.{i}")
    client = api.as_user(auditor)
    assert len(ids(client.get(EVENTS, {"page_size": 10_000}))) == 5
    assert len(ids(client.get(EVENTS, {"page_size": 3}))) == 3
    assert len(ids(client.get(EVENTS))) == 8  # the default, 50


def test_an_object_timeline_is_oldest_first_and_grows_at_the_end(api, auditor, clerk):
    def touch(n: int, start: int = 0) -> None:
        for i in range(start, start + n):
            AuditEventFactory(
                action="test.touched",
                actor=clerk,
                object_type="finance.journalentry",
                object_id="42",
                metadata={"i": i},
            )
            AuditEventFactory(
                action="test.other", object_type="finance.journalentry", object_id="43"
            )

    touch(12)
    client = api.as_user(auditor)
    url = "/api/v1/audit/objects/finance.journalentry/42/timeline/?page_size=5"
    seen = all_pages(client, url, between=lambda page: touch(2, start=100 + page))
    stored = AuditEvent.objects.filter(object_id="42").order_by("id")
    expected = list(stored.values_list("id", flat=True))
    assert seen == expected and len(seen) > 12  # what was appended on the way is read too
    assert len(set(seen)) == len(seen)


def test_a_timeline_reaches_object_ids_with_slashes(api, auditor):
    event = AuditEventFactory(
        action="test.thing", object_type="backups.file", object_id="2026/01/a.dump"
    )
    response = api.as_user(auditor).get(
        "/api/v1/audit/objects/backups.file/2026/01/a.dump/timeline/"
    )
    assert ids(response) == [event.id]


# Who sees what ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["finance_clerk", "finance_approver"])
def test_without_view_permission_a_user_sees_only_their_own_events(api, make_user, auditor, role):
    user = make_user(role)
    mine = AuditEventFactory(action="test.mine", actor=user, object_type="x.y", object_id="1")
    theirs = AuditEventFactory(
        action="test.theirs", actor=auditor, object_type="x.y", object_id="1"
    )
    system = AuditEventFactory(action="test.system")
    client = api.as_user(user)

    assert ids(client.get(EVENTS)) == [mine.id]
    assert ids(client.get(EVENTS, {"actor": auditor.pk})) == []
    assert ids(client.get(EVENTS, {"action": "test.system"})) == []
    assert client.get(f"{EVENTS}{mine.id}/").status_code == 200
    assert_error(client.get(f"{EVENTS}{theirs.id}/"), 404, "not_found")
    assert_error(client.get(f"{EVENTS}{system.id}/"), 404, "not_found")
    timeline = client.get("/api/v1/audit/objects/x.y/1/timeline/")
    assert_error(timeline, 403, "permission_denied")
    assert_error(client.get(f"/api/v1/audit/users/{auditor.pk}/activity/"), 403)
    assert client.get(f"/api/v1/audit/users/{user.pk}/activity/").json()["total"] >= 1
    for path in ("status/", "verifications/", "checkpoints/", "export/"):
        assert_error(client.get(f"/api/v1/audit/{path}"), 403, "permission_denied")


def test_anonymous_requests_read_nothing(api, db):
    AuditEventFactory(action="test.thing")
    response = api.get(EVENTS)
    assert response.status_code in (401, 403)
    assert "results" not in response.json()


# Activity reports ---------------------------------------------------------------------------


def test_a_user_activity_report(api, auditor, clerk):
    AuditEventFactory(
        action="auth.login_failed", metadata={"username": "clerk", "method": "password"}
    )
    AuditEventFactory(
        action="auth.login_failed", metadata={"username": "someone-else", "method": "password"}
    )
    AuditEventFactory(action="auth.lockout", metadata={"username": "clerk", "ip": "198.51.100.7"})
    AuditEventFactory(action="auth.login", actor=clerk, ip="203.0.113.1")
    AuditEventFactory(action="journal_entry.created", actor=clerk, ip="203.0.113.1")
    AuditEventFactory(action="journal_entry.created", actor=clerk, ip="203.0.113.2")
    AuditEventFactory(
        action="access.denied", actor=clerk, ip="203.0.113.2", metadata={"path": "/admin/"}
    )
    AuditEventFactory(action="journal_entry.created", actor=auditor, ip="192.0.2.1")
    own = AuditEvent.objects.filter(actor_id=clerk.pk).order_by("id")

    report = api.as_user(auditor).get(f"/api/v1/audit/users/{clerk.pk}/activity/").json()
    assert report["user_id"] == clerk.pk and report["username"] == "clerk"
    assert report["total"] == 4
    assert report["by_action"] == [
        {"action": "access.denied", "count": 1},
        {"action": "auth.login", "count": 1},
        {"action": "journal_entry.created", "count": 2},
    ]
    assert report["by_day"] == [{"day": own[0].occurred_at.date().isoformat(), "count": 4}]
    assert report["distinct_ips"] == 2
    assert [(row["ip"], row["count"]) for row in report["ips"]] == [
        ("203.0.113.1", 2),
        ("203.0.113.2", 2),
    ]
    assert (report["failed_logins"], report["lockouts"], report["access_denials"]) == (1, 1, 1)
    assert report["first_seen"].startswith(own[0].occurred_at.date().isoformat())

    # Their own report, for the clerk; a window that holds nothing.
    mine = api.as_user(clerk).get(f"/api/v1/audit/users/{clerk.pk}/activity/").json()
    assert mine["total"] == 4
    window = {"since": "2000-01-01", "until": "2000-01-02"}
    empty = api.as_user(clerk).get(f"/api/v1/audit/users/{clerk.pk}/activity/", window).json()
    assert (empty["total"], empty["first_seen"], empty["by_action"]) == (0, None, [])


def test_the_report_of_a_deleted_user_still_names_them(api, auditor, make_user):
    gone = make_user(username="leaver")
    AuditEventFactory(action="journal_entry.created", actor=gone)
    AuditEventFactory(action="auth.login_failed", metadata={"username": "leaver"})
    gone_id = gone.pk
    gone.delete()
    report = api.as_user(auditor).get(f"/api/v1/audit/users/{gone_id}/activity/").json()
    assert (report["username"], report["total"], report["failed_logins"]) == ("leaver", 1, 1)


def test_the_report_and_the_status_cost_a_fixed_number_of_queries(
    clerk, django_assert_max_num_queries
):
    for i in range(20):
        AuditEventFactory(action=f"test.thing.{i % 4}", actor=clerk, ip=f"203.0.113.{i}")
    with django_assert_max_num_queries(10):
        report = selectors.audit_user_activity(user_id=clerk.pk)
    assert report["total"] == 20 and report["distinct_ips"] == 20
    with django_assert_max_num_queries(4):
        selectors.audit_chain_status()


# Hostile input ------------------------------------------------------------------------------


def _cursor(position: str) -> str:
    return base64.b64encode(urlencode({"p": position}).encode()).decode()


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (EVENTS, {"since": "yesterday"}),
        (EVENTS, {"since": "2026-02-30"}),
        (EVENTS, {"until": "2020-13-01T00:00:00"}),
        (EVENTS, {"since": "2021-01-01", "until": "2020-01-01"}),
        (EVENTS, {"since": "0001-01-01T00:00:00+14:00"}),
        (EVENTS, {"until": "9999-12-31T23:59:59-14:00"}),
        (EVENTS, {"actor": "me"}),
        (EVENTS, {"actor": "1" * 30}),
        (EVENTS, {"actor": "-1"}),
        (EVENTS, {"object_id": "x" * 65}),
        (EVENTS, {"action": "a\x00b"}),
        (EVENTS, {"request_id": "\x00"}),
        (EVENTS, {"cursor": "not base64 at all!"}),
        (EVENTS, {"cursor": _cursor("abc")}),
        (EVENTS, {"cursor": _cursor("9" * 19)}),
        (EVENTS, {"cursor": _cursor("1 OR 1=1")}),
        ("/api/v1/audit/objects/x.y/1/timeline/", {"cursor": _cursor("1.5")}),
        ("/api/v1/audit/objects/a%00b/1/timeline/", {}),
        ("/api/v1/audit/objects/x.y/" + "9" * 70 + "/timeline/", {}),
        ("/api/v1/audit/users/1/activity/", {"since": "soon"}),
        ("/api/v1/audit/users/1/activity/", {"since": "2021-01-01", "until": "2020-01-01"}),
        ("/api/v1/audit/export/", {"format": "xml"}),
        ("/api/v1/audit/export/", {"format": "csv", "since": "not-a-date"}),
        ("/api/v1/audit/export/", {"since": "2021-01-01", "until": "2020-01-01"}),
        ("/api/v1/audit/export/", {"from_id": "0"}),
        ("/api/v1/audit/export/", {"from_id": "1e9999"}),
        ("/api/v1/audit/export/", {"to_id": str(2**64)}),
        ("/api/v1/audit/export/", {"from_id": "5", "to_id": "2"}),
    ],
)
def test_hostile_query_parameters_are_a_400(api, auditor, path, params):
    AuditEventFactory(action="test.thing", object_type="x.y", object_id="1")
    response = api.as_user(auditor).get(path, params)
    assert_error(response, 400, "invalid")
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


@pytest.mark.parametrize(
    "path",
    [
        f"{EVENTS}abc/",
        f"{EVENTS}{'9' * 30}/",
        f"{EVENTS}{'9' * 19}/",
        f"{EVENTS}99999/",
        "/api/v1/audit/users/99999999999999999999999/activity/",
    ],
)
def test_unknown_ids_are_a_404_or_empty(api, auditor, path):
    response = api.as_user(auditor).get(path)
    assert response.status_code in (200, 404), response.content
    if response.status_code == 200:
        assert response.json()["total"] == 0


def test_a_page_size_that_is_not_a_number_is_a_400(api, auditor):
    AuditEventFactory()
    response = api.as_user(auditor).get(EVENTS, {"page_size": "lots"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"page_size": ["A whole number from 1."]}


# Chain status, verification, checkpoints ---------------------------------------------------


def test_the_status_shows_head_last_verification_and_last_checkpoint(api, operator):
    AuditEventFactory.create_batch(3)
    checkpoint = services.checkpoint_create()
    services.chain_verify(triggered_by="test")
    status = api.as_user(operator).get("/api/v1/audit/status/").json()
    head = AuditEvent.objects.order_by("-id").first()
    assert status["head"]["sequence"] == head.id and status["head"]["hash"] == head.hash
    assert status["last_checkpoint"]["sequence"] == checkpoint.sequence
    assert status["last_verification"]["status"] == "ok"
    assert status["events_since_checkpoint"] == head.id - checkpoint.sequence
    assert status["open_alerts"] == 0


def test_verify_now_on_an_intact_chain(api, operator):
    AuditEventFactory.create_batch(4)
    response = api.as_user(operator).post("/api/v1/audit/verifications/", {}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["first_bad_id"], body["problems"]) == ("ok", None, [])
    assert body["events_checked"] == 4 and body["triggered_by"].startswith("api: operator")
    listed = api.as_user(operator).get("/api/v1/audit/verifications/").json()["results"]
    assert listed[0]["id"] == body["id"]


def test_verify_reports_the_first_broken_event(api, auditor):
    AuditEventFactory.create_batch(5)
    tamper("UPDATE audit_auditevent SET actor_repr = 'mallory' WHERE id = 3")
    response = api.as_user(auditor).post("/api/v1/audit/verifications/", {}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["first_bad_id"]) == ("broken", 3)
    problem = body["problems"][0]
    assert (problem["kind"], problem["code"], problem["event_id"]) == (
        "chain",
        "chain.content_changed",
        3,
    )
    assert problem["message"]


def test_verify_reports_which_checkpoint_disagrees(api, auditor):
    AuditEventFactory.create_batch(5)
    checkpoint = services.checkpoint_create()
    rewrite_chain(change_id=2, actor_repr="mallory")  # consistent: only the checkpoint knows
    body = api.as_user(auditor).post("/api/v1/audit/verifications/", {}, format="json").json()
    assert body["status"] == "checkpoint_mismatch"
    mismatched = [p for p in body["problems"] if p["code"] == "checkpoint.hash_mismatch"]
    assert {p.get("checkpoint_id") for p in mismatched} >= {checkpoint.pk}
    assert all(p["kind"] == "checkpoint" and p["sequence"] == 5 for p in mismatched)
    assert any("file" in p for p in mismatched)  # the copy in the backup location too


def test_a_range_is_verified_and_a_long_one_is_queued(api, operator, settings, monkeypatch):
    AuditEventFactory.create_batch(6)
    client = api.as_user(operator)
    body = client.post("/api/v1/audit/verifications/", {"from_id": 2, "to_id": 4}).json()
    assert (body["from_id"], body["to_id"], body["events_checked"]) == (2, 4, 3)

    queued = []
    monkeypatch.setattr(
        "audit.services.verification.async_task",
        lambda *args, **kwargs: queued.append(args) or "task-1",
    )
    settings.AUDIT_VERIFY_SYNC_LIMIT = 3
    before = Verification.objects.count()
    response = client.post("/api/v1/audit/verifications/", {"from_id": 2}, format="json")
    assert response.status_code == 202, response.content
    assert response.json() == {"queued": True, "task_id": "task-1"}
    assert queued == [("audit.tasks.verify_chain", 2, None, f"api: operator (#{operator.pk})")]
    assert Verification.objects.count() == before  # the worker writes it

    assert tasks.verify_chain(*queued[0][1:])["status"] == "ok"
    assert Verification.objects.order_by("-id").first().triggered_by.startswith("api: operator")


@pytest.mark.parametrize(
    "body", [{"from_id": "x"}, {"from_id": 0}, {"from_id": 5, "to_id": 2}, {"to_id": 2**70}]
)
def test_bad_verification_ranges_are_a_400(api, operator, body):
    response = api.as_user(operator).post("/api/v1/audit/verifications/", body, format="json")
    assert_error(response, 400, "invalid")
    assert not Verification.objects.exists()


def test_checkpoints_are_listed(api, auditor):
    AuditEventFactory()
    checkpoint = services.checkpoint_create()
    rows = api.as_user(auditor).get("/api/v1/audit/checkpoints/").json()["results"]
    assert [(r["sequence"], r["hash"]) for r in rows] == [(checkpoint.sequence, checkpoint.hash)]


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


def _next_position(url: str) -> str:
    cursor = parse_qs(urlparse(url).query)["cursor"][0]
    return parse_qs(base64.b64decode(cursor).decode())["p"][0]


def test_the_cursor_is_an_event_id(api, auditor):
    AuditEventFactory.create_batch(4)
    body = api.as_user(auditor).get(EVENTS, {"page_size": 2}).json()
    assert _next_position(body["next"]) == str(body["results"][-1]["id"])
