"""The Audit dashboard (audit/dashboard.py): who sees it and which of its sections and buttons,
the search and an object's timeline, verify and export through the existing services, the
Overview tile's statuses, hostile query strings, bounded query counts and the demo's chain."""

import datetime as dt
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone

from audit import services
from audit.dashboard import overview_tiles
from audit.models import AuditEvent, Checkpoint, Verification, VerificationStatus
from config import dashboards
from tests.audit.factories import AuditEventFactory
from tests.audit.helpers import tamper

PAGE = "/admin/dashboards/audit/"
TIMELINE = "/admin/dashboards/audit/timeline/"
VERIFY = "/admin/dashboards/audit/verify/"
EXPORT = "/admin/dashboards/audit/export/"
READERS = ("auditor", "operator", "admin")
OTHERS = ("finance_clerk", "finance_approver")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def said(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def events(n: int, **kwargs) -> None:
    for i in range(n):
        AuditEventFactory(action="auth.logout", object_id=str(i), **kwargs)


# Who sees what --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", READERS)
def test_readers_see_the_page_with_status_search_and_charts(make_user, role):
    AuditEventFactory(object_type="finance.account", object_id="7", object_repr="Cash")
    page = client_for(make_user(role)).get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    for section in ('id="audit-chain"', 'id="audit-search"', 'id="audit-activity"'):
        assert section in html, section
    assert html.count('class="lg-chart"') == 2 and "data:image/svg+xml;base64," in html
    assert 'id="audit-verify"' in html  # every reader holds audit.verify_auditevent
    # Only auditors export (audit.export_auditevent).
    assert ('id="audit-export"' in html) is (role == "auditor")


@pytest.mark.parametrize("role", OTHERS)
def test_clerks_and_approvers_are_refused_every_url(make_user, role):
    client = client_for(make_user(role))
    assert client.get(PAGE).status_code == 403
    assert client.get(TIMELINE, {"object_type": "a.b", "object_id": "1"}).status_code == 403
    assert client.post(VERIFY).status_code == 403
    assert client.post(EXPORT, {"format": "csv"}).status_code == 403
    assert not Verification.objects.exists()
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_the_tab_and_tile_show_only_for_readers(make_user):
    AuditEventFactory()
    clerk_index = client_for(make_user("finance_clerk")).get("/admin/").content.decode()
    assert PAGE not in clerk_index
    auditor_index = client_for(make_user("auditor")).get("/admin/").content.decode()
    assert 'id="tile-audit-chain"' in auditor_index and f'href="{PAGE}"' in auditor_index


def test_a_reader_without_verification_and_checkpoint_pages_gets_no_chain_section(make_user):
    user = make_user(is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_auditevent", content_type__app_label="audit")
    )
    html = client_for(user).get(PAGE).content.decode()
    assert 'id="audit-search"' in html
    assert 'id="audit-chain"' not in html and 'id="audit-verify"' not in html
    assert 'id="audit-export"' not in html


# Search and timeline --------------------------------------------------------------------------


def test_search_filters_by_actor_action_object_and_time(make_user):
    auditor, clerk = make_user("auditor"), make_user("finance_clerk", username="carl")
    AuditEventFactory(actor=clerk, action="auth.login")
    AuditEventFactory(
        actor=clerk, action="auth.logout", object_type="finance.account", object_id="not-a-pk"
    )
    AuditEventFactory(actor=auditor, action="auth.logout")
    client = client_for(auditor)

    def found(**query) -> list[int]:
        page = client.get(PAGE, query)
        assert page.status_code == 200
        return [e.id for e in page.context["results"]]

    mine = list(AuditEvent.objects.filter(actor_id=clerk.pk).order_by("-id").values_list("id"))
    assert found(actor="carl") == [i for (i,) in mine]  # newest first
    assert len(found(actor="carl", action="auth.logout")) == 1
    assert len(found(object_type="finance.account", object_id="not-a-pk")) == 1
    assert found(actor="nobody-by-that-name") == []
    # The form reads local time (TIME_ZONE); noon the day after tomorrow is never a time the
    # clocks skip or repeat.
    later = f"{timezone.localdate() + dt.timedelta(days=2)}T12:00"
    assert found(since=later) == []
    assert len(found(until=later, actor="carl")) == 2


def test_search_finds_a_deleted_users_events_by_the_recorded_name(make_user):
    gone = make_user("finance_clerk", username="leaver")
    AuditEventFactory(actor=gone, action="auth.login")
    gone.delete()
    page = client_for(make_user("auditor")).get(PAGE, {"actor": "leaver"})
    assert [e.action for e in page.context["results"]] == ["auth.login"]


def test_results_are_paginated_and_bounded(make_user):
    events(30)
    client = client_for(make_user("auditor"))
    first = client.get(PAGE, {"action": "auth.logout"})
    assert len(first.context["results"]) == 25
    second = client.get(PAGE, {"action": "auth.logout", "page": "2"})
    assert len(second.context["results"]) == 5
    html = second.content.decode()
    assert "previous" in html and "action=auth.logout" in html


@pytest.mark.parametrize(
    "query",
    [
        {"since": "garbage"},
        {"until": "2026-13-45T99:99"},
        {"since": "2026-05-02T00:00", "until": "2026-05-01T00:00"},
        {"action": "not.an.action"},
        {"object_type": "'; DROP TABLE audit_auditevent; --"},
        {"object_id": "1", "object_type": ""},
        {"actor": "x" * 5000},
        {"object_id": "9" * 5000, "object_type": "a.b"},
        {"since": "99999-01-01T00:00"},
    ],
)
def test_bad_search_values_are_form_errors(make_user, query):
    AuditEventFactory()
    page = client_for(make_user("auditor")).get(PAGE, query)
    assert page.status_code == 200
    assert page.context["search_form"].errors
    assert page.context["results"] is None
    assert 'class="errorlist' in page.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        {"page": "x"},
        {"page": "-1"},
        {"page": "99999999999999999999"},
        {"range": "zzz"},
        {"range": "hour"},  # not one of this page's ranges
        {"since": "0001-01-01T00:00", "until": "9999-12-31T23:59"},
    ],
)
def test_hostile_query_strings_fall_back(make_user, query):
    AuditEventFactory()
    page = client_for(make_user("operator")).get(PAGE, query)
    assert page.status_code == 200
    assert page.context["range"].key in ("month", "week", "year")


def test_hostile_event_values_are_escaped(make_user):
    AuditEventFactory(object_type="x.y", object_id="1", object_repr="<script>alert(1)</script>")
    html = client_for(make_user("auditor")).get(PAGE).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_each_result_links_to_its_objects_timeline_in_order(make_user):
    AuditEventFactory(
        action="a.created",
        object_type="finance.account",
        object_id="12",
        changes={"name": [None, "Cash"]},
    )
    AuditEventFactory(action="other", object_type="finance.account", object_id="13")
    AuditEventFactory(
        action="a.changed",
        object_type="finance.account",
        object_id="12",
        changes={"name": ["Cash", "<b>Bank</b>"]},
    )
    client = client_for(make_user("auditor"))
    html = client.get(PAGE).content.decode()
    link = f"{TIMELINE}?object_type=finance.account&amp;object_id=12"
    assert link in html
    timeline = client.get(TIMELINE, {"object_type": "finance.account", "object_id": "12"})
    assert timeline.status_code == 200
    assert [e.action for e, _ in timeline.context["rows"]] == ["a.created", "a.changed"]
    changes = [rows for _, rows in timeline.context["rows"]]
    assert changes == [[("name", "-", "Cash")], [("name", "Cash", "<b>Bank</b>")]]
    body = timeline.content.decode()
    assert "&lt;b&gt;Bank&lt;/b&gt;" in body and "<b>Bank</b>" not in body


@pytest.mark.parametrize(
    "query",
    [{}, {"object_type": "nonsense", "object_id": "1"}, {"object_type": "a.b"}, {"page": "x"}],
)
def test_timeline_without_a_valid_object_shows_the_form(make_user, query):
    page = client_for(make_user("operator")).get(TIMELINE, query)
    assert page.status_code == 200
    assert page.context["timeline"] is None


# Verify ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", READERS)
def test_readers_verify_through_the_page(make_user, role):
    events(3)
    client = client_for(make_user(role))
    response = client.post(VERIFY, {"next": PAGE + "?range=year"})
    assert response.status_code == 302 and response["Location"] == PAGE + "?range=year"
    verification = Verification.objects.get()
    assert verification.status == VerificationStatus.OK and verification.is_full
    assert verification.triggered_by.startswith("dashboard: ")
    assert AuditEvent.objects.filter(action="audit.chain_verified").count() == 1
    assert said(response)[0][0] == "success"


def test_verify_reports_a_broken_chain_as_an_error(make_user):
    events(3)
    tamper("UPDATE audit_auditevent SET actor_repr = 'mallory' WHERE id = 2")
    response = client_for(make_user("auditor")).post(VERIFY)
    assert response.status_code == 302 and response["Location"] == PAGE
    level, text = said(response)[0]
    assert level == "error" and "#2" in text
    assert Verification.objects.get().status == VerificationStatus.BROKEN


def test_verify_with_a_bogus_body_or_foreign_next_goes_back_to_the_page(make_user):
    events(1)
    client = client_for(make_user("operator"))
    response = client.post(VERIFY, {"tag": "none", "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == PAGE
    assert client.get(VERIFY).status_code == 405


def test_a_long_chain_is_queued(make_user, settings, monkeypatch):
    events(3)
    settings.AUDIT_VERIFY_SYNC_LIMIT = 1
    queued = []
    monkeypatch.setattr(
        "audit.services.verification.async_task", lambda *a, **k: queued.append(a) or "t-1"
    )
    response = client_for(make_user("auditor")).post(VERIFY)
    assert response.status_code == 302 and queued
    assert said(response)[0][0] == "info"
    assert not Verification.objects.exists()


# Export ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_auditors_download_an_export_with_its_manifest(make_user, fmt):
    events(4)
    auditor = make_user("auditor")
    since = f"{timezone.localdate() - dt.timedelta(days=1)}T12:00"  # local time, as typed
    response = client_for(auditor).post(EXPORT, {"format": fmt, "since": since})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = sorted(archive.namelist())
    assert len(names) == 2 and names[1] == names[0] + ".manifest.json"
    manifest = json.loads(archive.read(names[1]))
    assert manifest["format"] == fmt and manifest["count"] >= 4
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor_id == auditor.pk and exported.metadata["via"] == "dashboard"


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_operators_and_admins_cannot_export(make_user, role):
    events(2)
    response = client_for(make_user(role)).post(EXPORT, {"format": "csv"})
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


@pytest.mark.parametrize(
    "body",
    [
        {"tag": "none"},
        {"format": "xlsx"},
        {"format": "csv", "since": "garbage"},
        {"format": "csv", "since": "2026-05-02T00:00", "until": "2026-05-01T00:00"},
    ],
)
def test_a_bad_export_request_is_a_message_and_exports_nothing(make_user, body):
    events(2)
    response = client_for(make_user("auditor")).post(EXPORT, body)
    assert response.status_code == 302 and response["Location"] == PAGE
    level, text = said(response)[0]
    assert level == "error" and text.startswith("Nothing exported")
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_an_empty_window_exports_nothing(make_user):
    events(2)
    future = f"{timezone.localdate() + dt.timedelta(days=2)}T12:00"
    response = client_for(make_user("auditor")).post(EXPORT, {"format": "csv", "since": future})
    assert response.status_code == 302
    assert said(response)[0][0] == "warning"
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


# The Overview tile ----------------------------------------------------------------------------


def tile(who):
    """The audit tile on the Overview, for a user or a client already logged in (logging in
    records an event)."""
    client = who if isinstance(who, Client) else client_for(who)
    response = client.get("/admin/")
    return next(t for t in response.context["overview_tiles"] if t.key == "audit-chain")


def test_tile_is_ok_after_a_full_verification(make_user):
    events(2)
    client = client_for(make_user("auditor"))
    services.chain_verify(triggered_by="test")
    found = tile(client)
    assert found.status == "ok" and found.summary.startswith("Intact")
    assert dict(found.rows)["Events after the last verified"] == "1"  # the verification's own


def test_tile_warns_when_no_full_verification_passed_recently(make_user, settings):
    events(2)
    assert tile(make_user("auditor")).status == "warn"  # never verified
    services.chain_verify(triggered_by="test")
    Verification.objects.update(started_at=timezone.now() - dt.timedelta(hours=30))
    settings.AUDIT_VERIFY_MAX_AGE_HOURS = 26
    found = tile(make_user("operator"))
    assert found.status == "warn" and "26 h" in found.summary
    # A range verification does not make the chain fresh again (as audit.verification_recent).
    services.chain_verify(triggered_by="test", from_id=1, to_id=2)
    assert tile(make_user("admin")).status == "warn"


def test_tile_is_bad_when_the_last_full_verification_found_the_chain_broken(make_user):
    events(3)
    services.chain_verify(triggered_by="test")
    tamper("UPDATE audit_auditevent SET actor_repr = 'mallory' WHERE id = 2")
    services.chain_verify(triggered_by="test")
    found = tile(make_user("auditor"))
    assert found.status == "bad" and "#2" in found.summary


def test_tile_says_no_data_on_an_empty_trail(rf, make_user):
    request = rf.get("/admin/")
    request.user = make_user("auditor")
    (found,) = overview_tiles(request)
    assert found.status == "none"


# Bounded queries ------------------------------------------------------------------------------


def _arrange(n: int) -> None:
    for i in range(n):
        AuditEventFactory(
            action=f"test.kind{i % 7}", object_type="x.y", object_id=str(i), changes={"a": [i, 1]}
        )
    services.chain_verify(triggered_by="test")
    with transaction.atomic():
        services.checkpoint_create()


# The session, the user, their two second-factor devices, their permissions (2); the search's
# count and page, the two charts, the head, three verifications and the checkpoints (10).
PAGE_QUERIES = 15


@pytest.mark.parametrize("n", [3, 30])
def test_page_queries_do_not_grow_with_the_trail(make_user, django_assert_max_num_queries, n):
    _arrange(n)
    client = client_for(make_user("auditor"))
    with django_assert_max_num_queries(PAGE_QUERIES):
        assert client.get(PAGE, {"range": "year"}).status_code == 200


@pytest.mark.parametrize("n", [3, 30])
def test_timeline_queries_do_not_grow_with_its_events(make_user, django_assert_max_num_queries, n):
    for _ in range(n):
        AuditEventFactory(object_type="x.y", object_id="1", changes={"a": [1, 2]})
    client = client_for(make_user("auditor"))
    # The session, user, devices (2), permissions (2); the timeline's count and page.
    with django_assert_max_num_queries(8):
        response = client.get(TIMELINE, {"object_type": "x.y", "object_id": "1"})
    assert len(response.context["rows"]) == min(n, 50)


@pytest.mark.parametrize("n", [3, 30])
def test_tile_queries_are_few(rf, make_user, django_assert_max_num_queries, n):
    _arrange(n)
    request = rf.get("/admin/")
    request.user = make_user("auditor")
    request.user.get_all_permissions()  # cached on the user, as the admin's pages have it
    with django_assert_max_num_queries(5):
        overview_tiles(request)


# The registration and the demo ----------------------------------------------------------------


def test_the_dashboard_is_registered_as_the_issue_asks():
    board = next(d for d in dashboards.registered() if d.key == "audit")
    assert (board.title, board.order) == ("Audit", 40)


def test_the_demo_leaves_a_verified_and_checkpointed_chain(make_user):
    call_command("seed_demo", days=30, stdout=io.StringIO())
    last = Verification.objects.order_by("-id").first()
    assert last is not None and last.status == VerificationStatus.OK and last.is_full
    assert Checkpoint.objects.exists()
    # Run again: nothing new to sign or verify, nothing added.
    out = io.StringIO()
    call_command("seed_demo", days=30, stdout=out)
    assert "Audit: the chain is already signed and verified; nothing added." in out.getvalue()
    assert Verification.objects.count() == 1
    page = client_for(make_user("auditor")).get(PAGE, {"range": "month"})
    assert page.status_code == 200
    assert page.context["chain"]["state"] == "ok"
    assert page.content.decode().count('class="lg-chart"') == 2
    assert page.context["per_day_chart"].rows and page.context["by_action_chart"].rows


DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_pages_doc_links_runbook_entries_that_exist():
    headings = re.findall(r"^#+ (.+)$", (DOCS / "runbooks.md").read_text(), re.M)
    anchors = {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-") for h in headings}
    linked = re.findall(r"runbooks\.md#([\w-]+)", (DOCS / "dashboards.md").read_text())
    assert linked and set(linked) <= anchors, set(linked) - anchors
