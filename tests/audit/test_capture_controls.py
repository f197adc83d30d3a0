"""Capture in the controls: dead letters (created, retried, discarded), alerts and silences,
error groups and schedule syncs write their audit events, with who did it."""

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from alerts import services as alerting
from alerts.models import Alert
from alerts.services import contract as alert_contract
from audit.models import AuditEvent
from config.errors import DomainError
from config.schedules import ScheduledJob
from finance import services
from integrity import services as integrity
from integrity.models import DeadLetter
from integrity.scheduling import schedules_sync
from integrity.transactions import OperationFailed, register_operation, run_operation
from monitoring import services as monitoring
from tests.audit.helpers import IP, notification, raise_capture, stored_text

pytestmark = pytest.mark.usefixtures("only_catalogued_actions")


# Dead letters ---------------------------------------------------------------

BROKEN = {"now": True}


def open_account_when_fixed(ctx):
    services.account_create(code=ctx.payload["code"], name="DLQ", type="asset", currency="USD")
    if BROKEN["now"]:  # after the account's event: the rollback must take it away
        raise RuntimeError("still broken")


register_operation("test.capture_open_account", open_account_when_fixed)


@pytest.fixture
def letter(db):
    BROKEN["now"] = True
    with pytest.raises(OperationFailed) as exc:
        run_operation("test.capture_open_account", payload={"code": "7601"})
    yield DeadLetter.objects.get(pk=exc.value.fields["dead_letter"])
    BROKEN["now"] = True


def test_dead_letter_create_retry_and_discard(letter, operator, trail, settings):
    created = AuditEvent.objects.get(action="dead_letter.created", object_id=str(letter.pk))
    assert created.metadata["operation"] == "test.capture_open_account"
    assert "still broken" in created.metadata["error"]
    assert not AuditEvent.objects.filter(object_repr="7601 DLQ").exists()

    integrity.deadletter_retry(dead_letter=letter, actor=operator)  # still broken
    failed = trail.one("dead_letter.retry_failed")
    assert failed.actor_id == operator.pk and failed.changes == {"status": ["retrying", "pending"]}
    assert failed.metadata["attempts"] == 1 and failed.metadata["exhausted"] is False
    assert trail.actions("account.") == []  # the failed attempt's own events rolled back

    BROKEN["now"] = False
    integrity.deadletter_retry(dead_letter=letter, actor=operator)
    assert trail.actions("dead_letter.") == ["dead_letter.retry_failed", "dead_letter.retried"]
    assert trail.actions("account.") == ["account.created"]
    retried = trail.one("dead_letter.retried")
    assert retried.actor_id == operator.pk and retried.changes["status"] == ["retrying", "resolved"]

    BROKEN["now"] = True
    with pytest.raises(OperationFailed) as exc:
        run_operation("test.capture_open_account", payload={"code": "7602"})
    other = DeadLetter.objects.get(pk=exc.value.fields["dead_letter"])
    with pytest.raises(DomainError):
        integrity.deadletter_discard(dead_letter=other, actor=operator, reason=" ")
    integrity.deadletter_discard(dead_letter=other, actor=operator, reason="duplicate of #9")
    discarded = trail.one("dead_letter.discarded")
    assert discarded.object_id == str(other.pk) and discarded.actor_id == operator.pk
    assert discarded.metadata["reason"] == "duplicate of #9"
    assert discarded.changes == {"status": ["pending", "discarded"]}


def test_dead_letter_retry_through_the_api_takes_the_user_from_the_request(
    api, operator, letter, trail
):
    response = api.as_user(operator).post(
        f"/api/v1/dead-letters/{letter.pk}/retry/", REMOTE_ADDR=IP
    )
    assert response.status_code == 200
    failed = trail.one("dead_letter.retry_failed")
    assert failed.actor_id == operator.pk and failed.ip == IP


# Alerts ---------------------------------------------------------------------


def test_alert_lifecycle_records_opening_escalation_ack_and_resolution(operator, trail):
    alert = raise_capture()
    raise_capture()  # a repeat: counted on the alert, not recorded
    raise_capture("critical")
    alerting.alert_acknowledge(alert=alert, actor=operator)
    with pytest.raises(DomainError):
        alerting.alert_acknowledge(alert=alert, actor=operator)
    alerting.alert_resolve(alert=alert, actor=operator, note="disk cleaned")

    assert trail.actions() == [
        "alert.opened",
        "alert.escalated",
        "alert.acknowledged",
        "alert.resolved",
    ]
    opened, escalated, acked, resolved = trail.events()
    assert opened.object_type == "alerts.alert" and opened.object_id == str(alert.pk)
    assert opened.metadata["source"] == "capture" and opened.actor_repr == "system"
    assert escalated.changes == {"severity": ["warning", "critical"]}
    assert acked.actor_id == operator.pk and acked.changes == {"state": ["firing", "acknowledged"]}
    assert resolved.actor_id == operator.pk and resolved.metadata["by"] == "user"
    assert resolved.metadata["note"] == "disk cleaned"


def test_alert_resolved_by_its_source_and_acknowledged_by_link(trail):
    alert = raise_capture(key="by-source")
    alerting.resolve_alert(source="capture", key="by-source")
    resolved = trail.one("alert.resolved")
    assert resolved.metadata["by"] == "source" and resolved.actor_id is None

    alert = raise_capture(key="by-link")
    token = alerting.ack_token(delivery=notification(alert))
    Client().post(f"/alerts/ack/{token}/", REMOTE_ADDR=IP)
    acked = trail.one("alert.acknowledged")
    delivery = alert.deliveries.get().pk
    assert acked.metadata == {
        "method": "link",
        "sent_to": "on-call",
        "delivery": delivery,
        "firing": 1,
    }
    assert acked.ip == IP
    assert token not in stored_text()


def test_raise_alert_never_raises_when_the_audit_write_fails(db, monkeypatch, trail):
    def down(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(alert_contract, "audit_record", down)
    assert raise_capture(key="db-down") is None
    assert not Alert.objects.filter(key="db-down").exists()  # rolled back with its event
    assert trail.events() == []


def test_silences_record_create_approve_and_expire(operator, make_user, trail):
    second = make_user("operator", username="operator2")
    silence = alerting.silence_create(
        actor=operator, reason="deploy", ends_at=timezone.now() + timedelta(hours=1)
    )
    with pytest.raises(DomainError):
        alerting.silence_approve(silence=silence, actor=operator)  # not their own
    alerting.silence_approve(silence=silence, actor=second)
    alerting.silence_expire(silence=silence, actor=operator)
    alerting.silence_expire(silence=silence, actor=operator)  # already over: nothing changes

    assert trail.actions() == ["silence.created", "silence.approved", "silence.expired"]
    created, approved, expired = trail.events()
    assert created.actor_id == operator.pk and created.changes["reason"] == [None, "deploy"]
    assert created.changes["needs_approval"] == [None, True]
    assert approved.actor_id == second.pk and approved.metadata == {"created_by": operator.pk}
    assert approved.changes["approved_by"] == [None, second.pk]
    assert expired.actor_id == operator.pk and set(expired.changes) == {"ends_at"}


# Error groups, schedules ----------------------------------------------------


def test_error_group_triage_is_recorded(operator, trail):
    try:
        raise ValueError("capture boom")
    except ValueError as exc:
        group = monitoring.error_record(exc=exc, source="other").group
    monitoring.error_group_resolve(group=group, actor=operator)
    monitoring.error_group_reopen(group=group, actor=operator)
    monitoring.error_group_ignore(group=group, actor=operator)
    assert trail.actions("error_group.") == [
        "error_group.resolved",
        "error_group.reopened",
        "error_group.ignored",
    ]
    resolved, reopened, ignored = trail.events(
        "error_group.resolved", "error_group.reopened", "error_group.ignored"
    )
    assert resolved.actor_id == operator.pk and resolved.object_id == str(group.pk)
    assert resolved.changes["status"] == ["unresolved", "resolved"]
    assert reopened.changes == {"status": ["resolved", "unresolved"]}
    assert ignored.changes == {"status": ["unresolved", "ignored"]}


def test_schedule_sync_records_one_event_only_when_something_changed(db, trail):
    func = "integrity.tasks.purge_expired_idempotency_keys"
    jobs = [ScheduledJob(name="capture-a", func=func, cron="0 2 * * *")]
    schedules_sync(jobs=jobs)
    schedules_sync(jobs=jobs)  # nothing to do: nothing recorded
    schedules_sync(jobs=[ScheduledJob(name="capture-a", func=func, cron="30 3 * * *")])
    first, second = trail.events()
    assert (first.action, second.action) == ("schedules.synced", "schedules.synced")
    assert "capture-a" in first.metadata["created"]
    updated = {"capture-a": {"cron": ["0 2 * * *", "30 3 * * *"]}}
    assert second.metadata == {"created": [], "updated": updated, "deleted": []}
