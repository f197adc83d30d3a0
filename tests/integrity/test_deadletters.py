from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import TestCase
from django.utils import timezone
from django_q.signals import post_execute

from alerts import services as alert_services
from finance import services as finance
from finance.models import Account
from integrity import services
from integrity.models import DeadLetter
from integrity.transactions import OperationFailed, register_operation, run_operation
from tests.integrity.factories import TaskFactory

STATE = {"broken": True}


def create_when_fixed(ctx):
    if STATE["broken"]:
        raise RuntimeError("still broken")
    return finance.account_create(
        code=ctx.payload["code"], name="DLQ", type="asset", currency="USD"
    ).pk


register_operation("test.create_when_fixed", create_when_fixed)


@pytest.fixture
def letter(db):
    STATE["broken"] = True
    with pytest.raises(OperationFailed) as exc:
        run_operation("test.create_when_fixed", payload={"code": "7501"})
    yield DeadLetter.objects.get(pk=exc.value.fields["dead_letter"])
    STATE["broken"] = True


class TestApi:
    def test_operator_lists_retries_and_resolves(self, api, operator, letter):
        client = api.as_user(operator)
        listed = client.get("/api/v1/dead-letters/", {"status": "pending"}).json()
        assert [d["id"] for d in listed["results"]] == [letter.pk]
        assert listed["results"][0]["payload"] == {"code": "7501"}
        STATE["broken"] = False
        retried = client.post(f"/api/v1/dead-letters/{letter.pk}/retry/")
        assert retried.status_code == 200 and retried.json()["status"] == "resolved"
        assert retried.json()["events"][-1]["actor"] == "operator"
        assert Account.objects.filter(code="7501").count() == 1

    def test_discard_needs_a_reason_and_is_recorded(self, api, operator, letter):
        client = api.as_user(operator)
        response = client.post(f"/api/v1/dead-letters/{letter.pk}/discard/", {}, format="json")
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "deadletter.reason_required"
        response = client.post(
            f"/api/v1/dead-letters/{letter.pk}/discard/",
            {"reason": "duplicate of #9"},
            format="json",
        )
        assert response.json()["status"] == "discarded"
        assert response.json()["discard_reason"] == "duplicate of #9"
        again = client.post(f"/api/v1/dead-letters/{letter.pk}/retry/")
        assert again.status_code == 422
        assert again.json()["error"]["code"] == "deadletter.invalid_state"

    @pytest.mark.parametrize("role", ["finance_clerk", "finance_approver", "auditor"])
    def test_other_roles_cannot_act(self, api, make_user, letter, role):
        client = api.as_user(make_user(role))
        assert client.post(f"/api/v1/dead-letters/{letter.pk}/retry/").status_code == 403
        discard = client.post(
            f"/api/v1/dead-letters/{letter.pk}/discard/", {"reason": "x"}, format="json"
        )
        assert discard.status_code == 403
        letter.refresh_from_db()
        assert letter.status == "pending"


class TestCommand:
    def test_list_retry_discard(self, letter, operator):
        out = StringIO()
        call_command("deadletters", "list", stdout=out)
        assert f"#{letter.pk}" in out.getvalue() and "test.create_when_fixed" in out.getvalue()
        with pytest.raises(CommandError):
            call_command(
                "deadletters", "retry", str(letter.pk), stdout=StringIO(), stderr=StringIO()
            )
        STATE["broken"] = False
        out = StringIO()
        call_command("deadletters", "retry-all", "--as", "operator", stdout=out)
        assert f"#{letter.pk}: resolved" in out.getvalue()
        letter.refresh_from_db()
        assert letter.resolved_by == operator
        with pytest.raises(CommandError):
            call_command(
                "deadletters", "discard", str(letter.pk), "--reason", "late", stdout=StringIO()
            )


class TestScheduledRetry:
    def test_due_letters_retry_and_exhausted_ones_fail_and_alert(self, letter, settings, alerts):
        DeadLetter.objects.filter(pk=letter.pk).update(
            next_retry_at=timezone.now() - timedelta(seconds=1), max_attempts=2
        )
        assert services.deadletter_retry_due()["pending"] == 1
        letter.refresh_from_db()
        assert letter.status == "pending" and letter.next_retry_at > timezone.now()
        assert services.deadletter_retry_due()["resolved"] == 0  # not due yet
        DeadLetter.objects.filter(pk=letter.pk).update(next_retry_at=timezone.now())
        with TestCase.captureOnCommitCallbacks(execute=True):
            services.deadletter_retry_due()
        letter.refresh_from_db()
        assert letter.status == "failed" and letter.attempts == 2
        assert any(a["key"] == f"failed:{letter.pk}" for a in alerts)

    def test_a_retry_that_died_counts_as_a_failed_attempt(self, letter):
        """A letter whose retry killed or hung its process must not be retried forever."""
        DeadLetter.objects.filter(pk=letter.pk).update(
            status="retrying", last_attempt_at=timezone.now() - timedelta(hours=1), max_attempts=2
        )
        outcome = services.deadletter_retry_due()
        letter.refresh_from_db()
        assert outcome["released"] == 1
        assert letter.status == "pending" and letter.attempts == 1
        assert letter.next_retry_at > timezone.now()
        DeadLetter.objects.filter(pk=letter.pk).update(
            status="retrying", last_attempt_at=timezone.now() - timedelta(hours=1)
        )
        services.deadletter_retry_due()
        letter.refresh_from_db()
        assert letter.status == "failed" and letter.attempts == 2

    def test_business_rule_failure_on_retry_fails_at_once(self, ledger, approver, post):
        entry = post(ledger.cash, ledger.equity)  # already posted
        letter = services.deadletter_create(
            operation="finance.journal_entry_approve",
            payload={"entry_id": entry.pk, "actor_id": approver.pk},
        )
        result = services.deadletter_retry(dead_letter=letter)
        assert result.status == "failed" and result.attempts == 1
        assert "entry.invalid_state" in result.error

    def test_retry_keeps_the_root_cause(self, letter):
        result = services.deadletter_retry(dead_letter=letter)
        assert result.error.startswith("RuntimeError: still broken")


def test_queue_check_alerts_over_thresholds_and_resolves(letter, settings, alerts, monkeypatch):
    resolved = []
    monkeypatch.setattr(alert_services, "resolve_alert", lambda **kw: resolved.append(kw))
    settings.DEADLETTER_ALERT_COUNT = 1
    stats = services.deadletter_queue_check()
    assert stats["open"] == 1
    assert alerts[-1]["source"] == "deadletters" and alerts[-1]["key"] == "queue"
    settings.DEADLETTER_ALERT_COUNT = 5
    DeadLetter.objects.update(created_at=timezone.now())
    services.deadletter_queue_check()
    assert resolved[-1] == {"source": "deadletters", "key": "queue"}


def _task(task_id: str, attempts: int, success: bool = False) -> dict:
    """A stored task and the dict django-q2's post_execute hands over for it."""
    task = TaskFactory(
        id=task_id,
        func="integrity.tasks.purge_operation_records",
        success=success,
        attempt_count=attempts,
        result="Boom : Traceback ...",
    )
    return {
        "id": task.id,
        "name": task.name,
        "success": success,
        "func": task.func,
        "args": (),
        "kwargs": {},
        "result": "Boom : Traceback ...",
    }


def test_failed_task_on_its_last_attempt_becomes_a_dead_letter(db, settings, alerts):
    post_execute.send(sender="django_q", task=_task("a" * 32, attempts=1))
    assert not DeadLetter.objects.exists()  # the broker will present it again
    post_execute.send(sender="django_q", task=_task("b" * 32, attempts=3))
    letter = DeadLetter.objects.get()
    assert letter.kind == "task" and letter.operation == "integrity.tasks.purge_operation_records"
    assert letter.payload["task_id"] == "b" * 32
    assert alerts[-1]["source"] == "tasks"
    # A task dead letter retries by running the function again.
    assert services.deadletter_retry(dead_letter=letter).status == "resolved"


def test_admin_actions_retry_and_discard(client, operator, letter):
    client.force_login(operator)
    page = client.get(f"/admin/integrity/deadletter/{letter.pk}/change/").content.decode()
    assert "test.create_when_fixed" in page and "still broken" in page
    STATE["broken"] = False
    client.post(
        "/admin/integrity/deadletter/", {"action": "retry_letters", "_selected_action": [letter.pk]}
    )
    letter.refresh_from_db()
    assert letter.status == "resolved" and letter.resolved_by == operator
    other = services.deadletter_create(operation="test.create_when_fixed", payload={"code": "x"})
    client.post(
        "/admin/integrity/deadletter/",
        {"action": "discard_letters", "_selected_action": [other.pk]},
    )
    other.refresh_from_db()
    assert other.status == "discarded" and other.discarded_by == operator
    assert [e.action for e in other.events.all()] == ["created", "discarded"]


def test_auditor_sees_but_cannot_act_in_the_admin(client, auditor, letter):
    client.force_login(auditor)
    client.post(
        "/admin/integrity/deadletter/", {"action": "retry_letters", "_selected_action": [letter.pk]}
    )
    letter.refresh_from_db()
    assert letter.status == "pending"
