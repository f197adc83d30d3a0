"""The audit admin: read-only for everyone (superusers too), hostile values escaped, the chain
status panel and "Verify now", a changelist whose query count does not grow with the page."""

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit import services
from audit.models import AuditEvent, Verification
from tests.audit.factories import AuditEventFactory
from tests.audit.helpers import tamper

LIST = "/admin/audit/auditevent/"
VERIFY = "/admin/audit/auditevent/verify/"


@pytest.fixture
def superuser(make_user):
    return make_user(username="root", is_superuser=True)


def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", ["auditor", "operator", "admin"])
def test_readers_see_the_event_list_and_pages(client, make_user, role):
    event = AuditEventFactory(object_type="x.y", object_id="1", object_repr="Thing one")
    services.chain_verify(triggered_by="test")
    client = logged_in(client, make_user(role))
    for url in (
        LIST,
        f"{LIST}{event.id}/change/",
        "/admin/audit/checkpoint/",
        "/admin/audit/verification/",
    ):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    verification = Verification.objects.get()
    assert client.get(f"/admin/audit/verification/{verification.pk}/change/").status_code == 200


@pytest.mark.parametrize("role", ["finance_clerk", "finance_approver"])
def test_clerks_and_approvers_cannot_read_the_trail(client, make_user, role):
    user = make_user(role)
    event = AuditEventFactory(actor=user)  # not even their own events, here: the API scopes those
    client = logged_in(client, user)
    for url in (
        LIST,
        f"{LIST}{event.id}/change/",
        "/admin/audit/checkpoint/",
        "/admin/audit/verification/",
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(VERIFY).status_code == 403
    assert not Verification.objects.exists()


def test_nobody_adds_changes_or_deletes_events_not_even_a_superuser(client, superuser):
    event = AuditEventFactory(object_repr="original")
    client = logged_in(client, superuser)
    assert client.get(f"{LIST}add/").status_code == 403
    assert client.get(f"{LIST}{event.id}/delete/").status_code == 403
    assert client.post(f"{LIST}{event.id}/delete/", {"post": "yes"}).status_code == 403
    response = client.post(f"{LIST}{event.id}/change/", {"object_repr": "forged"})
    assert response.status_code == 403
    page = client.get(f"{LIST}{event.id}/change/").content.decode()
    assert 'name="_save"' not in page and "Delete" not in page
    listing = client.get(LIST).content.decode()
    assert "delete_selected" not in listing and f"{LIST}add/" not in listing
    client.post(
        LIST,
        {"action": "delete_selected", "_selected_action": [event.id], "index": 0, "post": "yes"},
    )
    assert AuditEvent.objects.get(id=event.id).object_repr == "original"
    for url in ("/admin/audit/checkpoint/add/", "/admin/audit/verification/add/"):
        assert client.get(url).status_code == 403


def test_the_event_page_shows_the_diff_and_escapes_everything(client, auditor):
    event = AuditEventFactory(
        action="test.hostile",
        user_agent="<script>alert('ua')</script>",
        object_type="x.y",
        object_id="1",
        object_repr="<b onmouseover=alert(1)>name</b>",
        changes={
            "<i>field</i>": ["<script>alert('before')</script>", "after & more"],
            "limits": [None, {"max": "<img src=x onerror=alert(2)>"}],
        },
        metadata={"note": "</pre><script>alert('meta')</script>"},
    )
    page = logged_in(client, auditor).get(f"{LIST}{event.id}/change/").content.decode()
    for raw in ("<script>alert(", "<img src=x", "<b onmouseover", "<i>field</i>", "</pre><script"):
        assert raw not in page, raw
    assert "&lt;script&gt;alert(&#x27;before&#x27;)&lt;/script&gt;" in page
    assert "&lt;i&gt;field&lt;/i&gt;" in page and "after &amp; more" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(&#x27;meta&#x27;)" in page
    assert 'class="audit-changes"' in page
    assert event.prev_hash in page and event.hash in page


def test_the_event_page_links_the_object_timeline_and_the_actor_activity(client, auditor, clerk):
    first = AuditEventFactory(
        action="test.one", actor=clerk, object_type="finance.journalentry", object_id="9"
    )
    AuditEventFactory(
        action="test.two", actor=auditor, object_type="finance.journalentry", object_id="9"
    )
    AuditEventFactory(
        action="test.three", actor=clerk, object_type="finance.journalentry", object_id="10"
    )
    client = logged_in(client, auditor)
    page = client.get(f"{LIST}{first.id}/change/").content.decode()
    timeline = f"{LIST}?object_type=finance.journalentry&amp;object_id=9"
    activity = f"{LIST}?actor={clerk.pk}"
    assert timeline in page and activity in page

    def actions(url: str) -> set[str]:
        response = client.get(url.replace("&amp;", "&"))
        assert response.status_code == 200
        return {e.action for e in response.context["cl"].result_list}

    assert actions(timeline) == {"test.one", "test.two"}
    assert actions(activity) == {"test.one", "test.three"}


def test_the_chain_status_panel(client, auditor, settings):
    client = logged_in(client, auditor)  # logging in is an event too
    AuditEventFactory.create_batch(3)
    checkpoint = services.checkpoint_create()
    AuditEventFactory()
    page = client.get(LIST).content.decode()
    assert 'id="audit-chain-status"' in page and "Last verification" in page and "never" in page
    assert f"#{checkpoint.sequence}," in page and "1 event since" in page

    tamper("UPDATE audit_auditevent SET actor_repr = 'mallory' WHERE id = 2")
    services.chain_verify(triggered_by="test")
    response = client.get(LIST)
    status = response.context["chain_status"]
    head = AuditEvent.objects.order_by("-id").first().id
    assert status["head"]["sequence"] == head and status["last_verification"].first_bad_id == 2
    page = response.content.decode()
    assert "Chain broken" in page and f'href="{LIST}2/change/"' in page
    assert status["open_alerts"] >= 1


def test_verify_now_runs_and_reports(client, operator):
    client = logged_in(client, operator)  # event #1
    AuditEventFactory.create_batch(3)
    assert 'id="audit-verify-now"' in client.get(LIST).content.decode()
    response = client.post(VERIFY)
    assert response.status_code == 302 and response["Location"] == LIST
    verification = Verification.objects.get()
    assert verification.status == "ok" and verification.triggered_by.startswith("admin: operator")
    assert "Chain verified: 4 events" in next(str(m) for m in get_messages(response.wsgi_request))

    tamper("UPDATE audit_auditevent SET action = 'forged' WHERE id = 2")
    response = client.post(VERIFY, follow=True)
    assert "Chain broken at event #2" in response.content.decode()


def test_verify_now_queues_a_long_chain(client, operator, settings, monkeypatch):
    AuditEventFactory.create_batch(3)
    queued = []
    monkeypatch.setattr(
        "audit.services.verification.async_task",
        lambda *args, **kwargs: queued.append(args) or "task-9",
    )
    settings.AUDIT_VERIFY_SYNC_LIMIT = 2
    response = logged_in(client, operator).post(VERIFY, follow=True)
    assert "queued" in response.content.decode()
    assert queued == [("audit.tasks.verify_chain", None, None, f"admin: operator (#{operator.pk})")]
    assert not Verification.objects.exists()


def test_verify_now_needs_post_csrf_and_the_permission(client, auditor, make_user):
    AuditEventFactory()
    assert logged_in(client, auditor).get(VERIFY).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(auditor)
    assert strict.post(VERIFY).status_code == 403
    assert not Verification.objects.exists()

    # Reads the trail, may not verify it: no button, and the POST is refused.
    reader = make_user(username="reader", permissions=["audit.view_auditevent"])
    client = logged_in(Client(), reader)
    page = client.get(LIST)
    assert page.status_code == 200 and 'id="audit-verify-now"' not in page.content.decode()
    assert client.post(VERIFY).status_code == 403
    assert not Verification.objects.exists()


def test_the_changelist_query_count_does_not_grow_with_the_events_shown(client, auditor, clerk):
    client = logged_in(client, auditor)  # event #1
    AuditEventFactory(actor=clerk, object_type="x.y", object_id="1")
    client.get(LIST)  # session and permission caches warm
    with CaptureQueriesContext(connection) as few:
        assert client.get(LIST).status_code == 200
    for i in range(40):
        AuditEventFactory(
            action=f"test.many.{i % 5}", actor=clerk, object_type=f"x.y{i % 3}", object_id=str(i)
        )
    with CaptureQueriesContext(connection) as many:
        response = client.get(LIST)
    assert len(response.context["cl"].result_list) == 42
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_the_event_page_query_count_is_fixed(client, auditor, django_assert_max_num_queries):
    event = AuditEventFactory(changes={f"f{i}": [i, i + 1] for i in range(50)}, metadata={"k": "v"})
    client = logged_in(client, auditor)
    client.get(f"{LIST}{event.id}/change/")
    with django_assert_max_num_queries(8):
        assert client.get(f"{LIST}{event.id}/change/").status_code == 200
