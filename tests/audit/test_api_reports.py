"""The forensics API's reports: a user's activity, the chain's status, verification on demand
(intact, broken, a checkpoint that disagrees, a range, a queued long one) and checkpoints."""

import pytest

from audit import selectors, services, tasks
from audit.models import AuditEvent, Verification
from tests.audit.factories import AuditEventFactory
from tests.audit.helpers import assert_error, rewrite_chain, tamper

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


def test_a_verification_range_is_json_numbers_not_strings(auditor, api):
    client = api.as_user(auditor)
    response = client.post("/api/v1/audit/verifications/", {"from_id": "5"}, format="json")
    assert response.status_code == 400, response.content
    assert "from_id" in response.json()["error"]["fields"]
