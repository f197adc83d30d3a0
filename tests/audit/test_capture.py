"""Capture: every state change made through a service, every login, failed login, permission
denial and admin change writes its audit event, in the same transaction as the change."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import OperationalError, connection
from django.db.models import Max
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from alerts import services as alerting
from alerts.models import Alert, EscalationPolicy, EscalationStep, Target
from alerts.services import contract as alert_contract
from audit.actions import catalogue
from audit.models import AuditEvent
from config.errors import DomainError
from config.models import ApiToken
from config.schedules import ScheduledJob
from finance import services
from finance.models import EntryStatus, FiscalPeriod
from integrity import services as integrity
from integrity.models import DeadLetter
from integrity.scheduling import schedules_sync
from integrity.transactions import OperationFailed, register_operation, run_operation
from monitoring import services as monitoring
from tests.alerts.factories import (
    DeliveryFactory,
    EscalationPolicyFactory,
    RouteFactory,
    TargetFactory,
)
from tests.conftest import line
from tests.factories import PASSWORD
from tests.finance.faults import RESULT_STORE, SEQUENCE_BUMP, statement_fault, statements

User = get_user_model()
UA = "capture-test-agent/1.0"
IP = "203.0.113.9"


class Trail:
    """The events written since the last mark."""

    def __init__(self) -> None:
        self.mark()

    def mark(self) -> None:
        self.start = AuditEvent.objects.aggregate(m=Max("id"))["m"] or 0

    def events(self, *actions: str) -> list[AuditEvent]:
        qs = AuditEvent.objects.filter(id__gt=self.start).order_by("id")
        return list(qs.filter(action__in=actions) if actions else qs)

    def actions(self, prefix: str = "") -> list[str]:
        return [e.action for e in self.events() if e.action.startswith(prefix)]

    def one(self, action: str) -> AuditEvent:
        found = self.events(action)
        assert len(found) == 1, f"{action}: {len(found)} events; trail {self.actions()}"
        return found[0]


@pytest.fixture
def trail(db) -> Trail:
    return Trail()


@pytest.fixture(autouse=True)
def only_catalogued_actions(db):
    """Every action written anywhere in these tests is in the catalogue the docs come from."""
    yield
    written = set(AuditEvent.objects.values_list("action", flat=True))
    assert written <= set(catalogue()), sorted(written - set(catalogue()))


def stored_text() -> str:
    """Everything an event says, as stored (the hashes left out: hex would match anything)."""
    rows = AuditEvent.objects.values(
        "actor_repr",
        "user_agent",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "changes",
        "metadata",
    )
    return json.dumps(list(rows), default=str)


def logged_in(user, **kwargs) -> Client:
    """A client with a session; logging in writes auth.login, so mark the trail after this."""
    client = Client(**kwargs)
    client.force_login(user)
    return client


# Ledger ---------------------------------------------------------------------


def test_account_changes_through_the_api_carry_user_ip_and_request_id(
    api, admin_user, ledger, trail
):
    client = api.as_user(admin_user)
    context = {"REMOTE_ADDR": IP, "HTTP_USER_AGENT": UA, "HTTP_X_REQUEST_ID": "req-capture-0001"}
    body = {"code": "1200", "name": "Petty cash", "type": "asset", "currency": "USD"}
    created = client.post("/api/v1/accounts/", body, format="json", **context)
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert (
        client.patch(
            f"/api/v1/accounts/{pk}/", {"name": "Petty cash EU"}, format="json"
        ).status_code
        == 200
    )
    assert client.delete(f"/api/v1/accounts/{pk}/").status_code == 204

    assert trail.actions() == ["account.created", "account.updated", "account.deleted"]
    added, updated, deleted = trail.events()
    assert (added.actor_id, added.ip, added.user_agent, added.request_id) == (
        admin_user.pk,
        IP,
        UA,
        "req-capture-0001",
    )
    assert (added.object_type, added.object_id, added.object_repr) == (
        "finance.account",
        str(pk),
        "1200 Petty cash",
    )
    assert added.changes["code"] == [None, "1200"] and added.changes["currency"] == [None, "USD"]
    assert updated.changes == {"name": ["Petty cash", "Petty cash EU"]}
    assert updated.actor_id == admin_user.pk and updated.request_id != added.request_id
    assert deleted.changes["name"] == ["Petty cash EU", None]


def test_a_refused_change_writes_no_event(ledger, clerk, trail):
    with pytest.raises(DomainError):
        services.account_update(account=ledger.cash, currency="XXQ")
    with pytest.raises(DomainError):  # unbalanced
        services.journal_entry_create(
            entry_date=ledger.today,
            description="Bad",
            created_by=clerk,
            lines=[
                line(ledger.cash, "D", Decimal("10.00")),
                line(ledger.revenue, "C", Decimal("9.00")),
            ],
        )
    assert trail.events() == []


def test_period_close_and_reopen_record_who_and_what_changed(ledger, approver, admin_user, trail):
    period = FiscalPeriod.objects.get(start_date__lte=ledger.today, end_date__gte=ledger.today)
    services.period_close(period=period, actor=approver)
    with pytest.raises(DomainError) as refused:
        services.period_close(period=period, actor=approver)
    assert refused.value.code == "period.closed"
    services.period_reopen(period=period, actor=admin_user)
    services.period_rename(period=period, name="Renamed")
    services.period_rename(period=period, name="Renamed")  # no change, no event

    # (closing also stores a check run: checks.requested and checks.completed)
    assert trail.actions("period.") == ["period.closed", "period.reopened", "period.renamed"]
    closed, reopened, renamed = trail.events("period.closed", "period.reopened", "period.renamed")
    assert closed.actor_id == approver.pk and closed.object_id == str(period.pk)
    assert closed.changes["status"] == ["open", "closed"]
    assert closed.changes["closed_by"] == [None, approver.pk]
    assert closed.metadata["fiscal_year"] == period.fiscal_year
    assert reopened.actor_id == admin_user.pk and reopened.changes["status"] == ["closed", "open"]
    assert renamed.changes == {"name": [period.name, "Renamed"]}


def test_journal_entry_workflow_records_each_step_with_its_actor(ledger, clerk, approver, trail):
    entry = services.journal_entry_create(
        entry_date=ledger.today,
        description="Rent",
        created_by=clerk,
        lines=[
            line(ledger.expense, "D", Decimal("40.00")),
            line(ledger.overdraft, "C", Decimal("40.00")),
        ],
    )
    services.journal_entry_update(
        entry=entry,
        actor=clerk,
        description="Rent March",
        lines=[
            line(ledger.expense, "D", Decimal("45.00")),
            line(ledger.overdraft, "C", Decimal("45.00")),
        ],
    )
    services.journal_entry_submit(entry=entry, actor=clerk)
    services.journal_entry_reject(entry=entry, actor=approver)
    services.journal_entry_submit(entry=entry, actor=clerk)
    posted = services.journal_entry_approve(entry=entry, actor=approver)
    reversal = services.journal_entry_reverse(entry=posted, actor=approver)

    assert trail.actions() == [
        "journal_entry.created",
        "journal_entry.updated",
        "journal_entry.submitted",
        "journal_entry.rejected",
        "journal_entry.submitted",
        "journal_entry.approved",
        "journal_entry.posted",
        "journal_entry.posted",
        "journal_entry.reversed",
    ]
    e = trail.events()
    assert all(ev.object_type == "finance.journalentry" for ev in e)
    assert [ev.actor_id for ev in e] == [clerk.pk] * 3 + [approver.pk, clerk.pk] + [approver.pk] * 4
    assert e[0].metadata["line_count"] == 2 and e[0].metadata["totals"] == {"USD": "40.00"}
    assert e[1].changes["description"] == ["Rent", "Rent March"]
    assert e[1].changes["lines"] == [
        [["6000", "D", "40.00", "USD"], ["1005", "C", "40.00", "USD"]],
        [["6000", "D", "45.00", "USD"], ["1005", "C", "45.00", "USD"]],
    ]
    assert e[3].changes == {"status": ["pending_approval", "draft"]}
    assert e[5].metadata == {"created_by": clerk.pk, "submitted_by": clerk.pk}
    assert e[6].object_repr == posted.display_number
    assert e[6].metadata["number"] == posted.display_number
    assert e[6].metadata["totals"] == {"USD": "45.00"} and e[6].metadata["approved"] is True
    assert e[6].changes["status"] == ["pending_approval", "posted"]
    assert e[7].object_id == str(reversal.pk) and e[7].metadata["reversal_of"] == posted.pk
    assert e[8].object_id == str(posted.pk)
    assert e[8].metadata["reversal_id"] == reversal.pk
    assert e[8].metadata["reversal_number"] == reversal.display_number
    assert e[8].changes == {"status": ["posted", "reversed"]}


def test_deleting_a_draft_is_recorded(ledger, clerk, trail):
    entry = services.journal_entry_create(
        entry_date=ledger.today,
        description="Oops",
        created_by=clerk,
        lines=[line(ledger.cash, "D", Decimal("5.00")), line(ledger.revenue, "C", Decimal("5.00"))],
    )
    services.journal_entry_delete(entry=entry, actor=clerk)
    deleted = trail.one("journal_entry.deleted")
    assert deleted.actor_id == clerk.pk and deleted.object_id == str(entry.pk)
    assert deleted.metadata["description"] == "Oops"


def test_maker_checker_refusal_writes_no_event(ledger, clerk, trail):
    entry = services.journal_entry_create(
        entry_date=ledger.today,
        description="Mine",
        created_by=clerk,
        lines=[line(ledger.cash, "D", Decimal("5.00")), line(ledger.revenue, "C", Decimal("5.00"))],
    )
    services.journal_entry_submit(entry=entry, actor=clerk)
    trail.mark()
    with pytest.raises(DomainError):
        services.journal_entry_approve(entry=entry, actor=clerk)
    assert trail.events() == []
    assert not DeadLetter.objects.exists()


class SerializationFailure(OperationalError):
    sqlstate = "40001"


def test_a_retried_operation_leaves_exactly_the_events_of_the_attempt_that_committed(
    ledger, clerk, trail, settings
):
    settings.OPERATION_RETRY_BASE_SECONDS = 0
    # The draft and the posting are recorded, then the fault (at the attempt's last statement).
    with (
        CaptureQueriesContext(connection) as queries,
        statement_fault(
            RESULT_STORE, lambda: SerializationFailure("could not serialize access"), times=1
        ),
    ):
        entry = services.journal_entry_record(
            entry_date=ledger.today,
            description="Accrual",
            actor=clerk,
            lines=[
                line(ledger.expense, "D", Decimal("7.00")),
                line(ledger.overdraft, "C", Decimal("7.00")),
            ],
        )
    postings = statements(queries.captured_queries, SEQUENCE_BUMP)
    assert postings == 2 and entry.status == EntryStatus.POSTED
    assert trail.actions() == ["journal_entry.created", "journal_entry.posted"]
    assert {e.object_id for e in trail.events()} == {str(entry.pk)}
    assert trail.one("journal_entry.posted").metadata["approved"] is False


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


def notification(alert):
    """A sent email notification of `alert`, the kind that carries an acknowledge link."""
    target = TargetFactory(name="on-call", channel="email", address="oncall@example.com")
    return DeliveryFactory(alert=alert, target=target, status="sent")


def raise_capture(severity="warning", key="disk"):
    return alerting.raise_alert(
        source="capture", key=key, severity=severity, title="Disk full", details={"free": "1%"}
    )


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


# Tokens, error groups, schedules ------------------------------------------------------


def test_api_tokens_issue_revoke_and_refusals_never_store_the_token(db, clerk, trail):
    response = APIClient().post(
        "/api/v1/auth/token/",
        {"username": "clerk", "password": PASSWORD, "name": "ci"},
        format="json",
        REMOTE_ADDR=IP,
    )
    assert response.status_code == 201
    raw = response.json()["token"]
    token = ApiToken.objects.get()
    created = trail.one("api_token.created")
    assert created.actor_id == clerk.pk and created.ip == IP
    assert created.object_id == str(token.pk) and created.metadata["user"] == clerk.pk

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.delete(f"/api/v1/auth/tokens/{token.pk}/").status_code == 204
    revoked = trail.one("api_token.revoked")
    assert revoked.actor_id == clerk.pk  # the request's user, authenticated by that token

    assert client.get("/api/v1/accounts/").status_code == 401
    refused = trail.one("auth.login_failed")
    assert refused.metadata == {"method": "token"} and refused.actor_id is None

    text = stored_text()
    assert raw not in text and raw[3:] not in text and token.prefix not in text
    assert token.digest not in text


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


# Authentication and denials ---------------------------------------------------


def test_login_failed_login_and_logout_through_the_admin_login_view(clerk, trail):
    client = Client(REMOTE_ADDR=IP, HTTP_USER_AGENT=UA)
    wrong = "Tr0ub4dor&3-not-it"
    refused = client.post("/admin/login/", {"username": "clerk", "password": wrong})
    assert refused.status_code == 200  # the form again
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "clerk", "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302
    assert client.post("/admin/logout/").status_code in (200, 302)

    assert trail.actions() == ["auth.login_failed", "auth.login", "auth.logout"]
    failed, login, logout = trail.events()
    assert failed.metadata == {"username": "clerk", "method": "password"}
    assert failed.actor_id is None and failed.actor_repr == "system"
    for event in (failed, login, logout):
        assert (event.ip, event.user_agent) == (IP, UA) and event.request_id
    assert login.actor_id == clerk.pk and login.object_id == str(clerk.pk)
    assert logout.actor_id == clerk.pk
    text = stored_text()
    assert wrong not in text and PASSWORD not in text


def test_a_lockout_after_repeated_failed_logins_is_recorded(clerk, trail, settings):
    """Five wrong passwords from one address lock the username out there (django-axes): the
    sixth attempt, even with the right password, is refused with 429 and the trail has it."""
    client = Client(REMOTE_ADDR=IP, HTTP_USER_AGENT=UA)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "clerk", "password": "wrong-password"})
    locked = client.post("/admin/login/", {"username": "clerk", "password": PASSWORD})
    assert locked.status_code == 429 and b"Too many failed logins" in locked.content
    assert "_auth_user_id" not in client.session
    # django-axes reports the lockout when the limit is reached, and again for each attempt
    # it refuses while the lockout lasts.
    lockout, refused = trail.events("auth.lockout")
    # The fifth failure locks (axes reports it while handling that failure, before ours).
    limit = settings.AXES_FAILURE_LIMIT
    assert trail.actions("auth.")[: limit + 1] == [
        *["auth.login_failed"] * (limit - 1),
        "auth.lockout",
        "auth.login_failed",
    ]
    assert lockout.metadata == refused.metadata == {"username": "clerk", "ip": IP}
    assert (lockout.ip, lockout.user_agent) == (IP, UA)
    assert trail.actions("auth.").count("auth.login_failed") >= settings.AXES_FAILURE_LIMIT
    assert "auth.login" not in trail.actions()
    # Another address is not locked out: nobody can lock a colleague out from elsewhere.
    other = Client(REMOTE_ADDR="203.0.113.99")
    assert (
        other.post(
            "/admin/login/?next=/admin/",
            {"username": "clerk", "password": PASSWORD, "next": "/admin/"},
        ).status_code
        == 302
    )


def test_a_locked_out_api_login_answers_429_in_the_error_shape(clerk, api, settings):
    body = {"username": "clerk", "password": "wrong-password", "name": "laptop"}
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert api.post("/api/v1/auth/token/", body, format="json").status_code in (401, 429)
    response = api.post("/api/v1/auth/token/", {**body, "password": PASSWORD}, format="json")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert response.json()["error"]["code"] in ("auth.locked_out", "throttled")


def test_a_403_from_the_api_records_access_denied(api, clerk, ledger, trail):
    period = FiscalPeriod.objects.get(start_date__lte=ledger.today, end_date__gte=ledger.today)
    path = f"/api/v1/periods/{period.pk}/close/"
    response = api.as_user(clerk).post(path, REMOTE_ADDR=IP)
    assert response.status_code == 403
    denied = trail.one("access.denied")
    assert denied.metadata == {"method": "POST", "path": path, "status": 403}
    assert denied.actor_id == clerk.pk and denied.ip == IP
    assert trail.actions("period.") == []


def test_a_403_from_an_admin_page_and_a_csrf_failure_record_access_denied(
    auditor, admin_user, trail
):
    reader, csrf = logged_in(auditor), logged_in(admin_user, enforce_csrf_checks=True)
    trail.mark()
    assert reader.get("/admin/alerts/target/add/").status_code == 403
    assert csrf.post("/admin/alerts/target/add/", {"name": "x"}).status_code == 403
    first, second = trail.events()
    assert (first.action, first.actor_id) == ("access.denied", auditor.pk)
    assert first.metadata == {"method": "GET", "path": "/admin/alerts/target/add/", "status": 403}
    assert (second.action, second.actor_id) == ("access.denied", admin_user.pk)
    assert second.metadata["method"] == "POST"
    assert not Target.objects.exists()


def test_a_denied_ack_link_does_not_put_its_token_in_the_trail(db, trail):
    alert = raise_capture(key="csrf")
    token = alerting.ack_token(delivery=notification(alert))
    response = Client(enforce_csrf_checks=True).post(f"/alerts/ack/{token}/")
    assert response.status_code == 403
    denied = trail.one("access.denied")
    assert denied.metadata["path"] == "/alerts/ack/[redacted]/"
    assert token not in stored_text()


# Admin ----------------------------------------------------------------------


def target_form(**values):
    return {
        "name": "ops",
        "channel": "email",
        "address": "ops@example.com",
        "webhook_format": "json",
        "is_active": "on",
        **values,
    }


def test_target_admin_add_change_and_delete_record_before_and_after(admin_user, trail):
    client = logged_in(admin_user)
    trail.mark()
    assert client.post("/admin/alerts/target/add/", target_form()).status_code == 302
    target = Target.objects.get(name="ops")
    changed = client.post(
        f"/admin/alerts/target/{target.pk}/change/", target_form(address="ops2@example.com")
    )
    assert changed.status_code == 302
    client.post(
        f"/admin/alerts/target/{target.pk}/change/", target_form(address="ops2@example.com")
    )
    spare = TargetFactory(name="spare", channel="sms", address="+15550100")
    deleted = client.post(
        "/admin/alerts/target/",
        {"action": "delete_selected", "post": "yes", "_selected_action": [target.pk, spare.pk]},
    )
    assert deleted.status_code == 302 and not Target.objects.exists()

    # Saving without a change records nothing.
    assert trail.actions() == ["admin.added", "admin.changed", "admin.deleted", "admin.deleted"]
    added, change, *gone = trail.events()
    assert (added.object_type, added.object_id, added.actor_id) == (
        "alerts.target",
        str(target.pk),
        admin_user.pk,
    )
    assert added.changes["address"] == [None, "ops@example.com"]
    assert change.changes == {"address": ["ops@example.com", "ops2@example.com"]}
    assert {e.object_id for e in gone} == {str(target.pk), str(spare.pk)}
    assert {e.changes["name"][0] for e in gone} == {"ops", "spare"}


def test_a_webhook_url_is_kept_as_a_fingerprint_not_in_clear(admin_user, trail):
    client = logged_in(admin_user)
    secret_url = "https://hooks.slack.com/services/T000/B000/s3cr3tT0k3n"
    form = target_form(channel="webhook", address=secret_url, webhook_format="slack")
    assert client.post("/admin/alerts/target/add/", form).status_code == 302
    target = Target.objects.get(name="ops")
    form["address"] = secret_url + "x"
    assert client.post(f"/admin/alerts/target/{target.pk}/change/", form).status_code == 302
    assert "s3cr3tT0k3n" not in stored_text()
    before, after = trail.one("admin.changed").changes["address"]
    assert before.startswith("[webhook URL sha256:") and before != after  # the change shows


def test_policy_admin_records_the_policy_and_its_inline_steps(admin_user, trail):
    oncall = TargetFactory(name="on-call", channel="email", address="oncall@example.com")
    data = {
        "name": "finance",
        "ack_timeout_minutes": "30",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-position": "0",
        "steps-0-delay_minutes": "5",
        "steps-0-targets": [str(oncall.pk)],
    }
    client = logged_in(admin_user)
    trail.mark()
    response = client.post("/admin/alerts/escalationpolicy/add/", data)
    assert response.status_code == 302, response.content
    policy = EscalationPolicy.objects.get()
    step = EscalationStep.objects.get()
    assert trail.actions() == ["admin.added", "admin.added"]
    parent, child = trail.events()
    assert parent.object_type == "alerts.escalationpolicy" and parent.object_id == str(policy.pk)
    assert child.object_type == "alerts.escalationstep" and child.object_id == str(step.pk)
    assert child.changes["targets"] == [None, [oncall.pk]]
    assert child.metadata == {
        "parent_type": "alerts.escalationpolicy",
        "parent_id": policy.pk,
        "m2m": {"targets": {"added": [str(oncall)], "removed": []}},
    }


def test_route_edited_in_the_changelist_is_recorded(admin_user, trail):
    route = RouteFactory(name="all", policy=EscalationPolicyFactory(name="default"), position=10)
    client = logged_in(admin_user)
    trail.mark()
    # "form-0-is_active" left out: the box is unticked.
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "form-0-id": str(route.pk),
        "form-0-position": "5",
        "_save": "Save",
    }
    assert client.post("/admin/alerts/route/", data).status_code == 302
    changed = trail.one("admin.changed")
    assert changed.object_id == str(route.pk)
    assert changed.changes == {"is_active": [True, False], "position": [10, 5]}


def user_form(user, **values):
    joined = timezone.localtime(user.date_joined)
    return {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "is_staff": "on",
        "date_joined_0": joined.date().isoformat(),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        "user_permissions": [],
        **values,
    }


def test_a_users_group_change_in_the_admin_is_recorded(admin_user, clerk, trail):
    # The admin form keeps whole seconds; so does the stored value here, so only groups change.
    User.objects.filter(pk=clerk.pk).update(date_joined=clerk.date_joined.replace(microsecond=0))
    clerk.refresh_from_db()
    clerks, approvers = (Group.objects.get(name=n) for n in ("finance_clerk", "finance_approver"))
    client = logged_in(admin_user)
    trail.mark()
    response = client.post(
        f"/admin/auth/user/{clerk.pk}/change/", user_form(clerk, groups=[str(approvers.pk)])
    )
    assert response.status_code == 302, response.content
    assert list(clerk.groups.all()) == [approvers]
    changed = trail.one("admin.changed")
    assert (changed.object_type, changed.object_id, changed.actor_id) == (
        "auth.user",
        str(clerk.pk),
        admin_user.pk,
    )
    assert changed.changes == {"groups": [[clerks.pk], [approvers.pk]]}
    assert changed.metadata == {
        "m2m": {"groups": {"added": ["finance_approver"], "removed": ["finance_clerk"]}}
    }


def test_passwords_never_reach_the_trail(admin_user, make_user, trail):
    root = make_user(username="root", is_superuser=True)  # the admin role deletes no users
    client = logged_in(root)
    trail.mark()
    new = "N3w-Sturdy-Passphrase-2025!"
    added = client.post(
        "/admin/auth/user/add/",
        {"username": "newbie", "password1": new, "password2": new, "usable_password": "true"},
    )
    assert added.status_code == 302, added.content
    newbie = User.objects.get(username="newbie")
    other = "An0ther-Sturdy-Passphrase!"
    changed = client.post(
        f"/admin/auth/user/{newbie.pk}/password/",
        {"password1": other, "password2": other, "usable_password": "true"},
    )
    assert changed.status_code == 302, changed.content
    newbie.refresh_from_db()
    assert newbie.check_password(other)
    client.post(f"/admin/auth/user/{newbie.pk}/delete/", {"post": "yes"})
    assert not User.objects.filter(pk=newbie.pk).exists()

    assert trail.actions() == ["admin.added", "admin.changed", "admin.deleted"]
    created, password_changed, deleted = trail.events()
    assert created.changes["password"] == ["[redacted]", "[redacted]"]
    assert password_changed.changes == {"password": ["[redacted]", "[redacted]"]}
    assert password_changed.metadata == {"form": "password"}
    assert deleted.changes["password"] == ["[redacted]", "[redacted]"]
    text = stored_text()
    for secret in (new, other, newbie.password, PASSWORD, root.password):
        assert secret not in text


def test_admin_actions_through_services_are_recorded_once(admin_user, ledger, trail):
    """Admin writes that go through a service are recorded by the service, not twice."""
    period = FiscalPeriod.objects.get(start_date__lte=ledger.today, end_date__gte=ledger.today)
    client = logged_in(admin_user)
    trail.mark()
    response = client.post(
        "/admin/finance/fiscalperiod/", {"action": "close_periods", "_selected_action": [period.pk]}
    )
    assert response.status_code == 302
    assert trail.actions("period.") == ["period.closed"]
    assert trail.actions("checks.") == ["checks.requested", "checks.completed"]
    assert trail.one("period.closed").actor_id == admin_user.pk


def test_behind_trusted_proxies_the_client_address_is_recorded(clerk, trail, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    client = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7, 192.0.2.44")
    client.post("/admin/login/", {"username": "clerk", "password": "not-it"})
    # One trusted proxy appended the last address: that one is the client as the proxy saw it.
    assert trail.one("auth.login_failed").ip == "192.0.2.44"


def test_changing_your_own_password_is_recorded(clerk, trail):
    client = logged_in(clerk)
    clerk.is_staff = True
    clerk.save(update_fields=["is_staff"])
    trail.mark()
    new = "a-new-Passw0rd-for-clerk"
    response = client.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    event = trail.one("auth.password_changed")
    assert (event.actor_id, event.object_id) == (clerk.pk, str(clerk.pk))
    assert new not in stored_text() and PASSWORD not in stored_text()


def test_lifting_a_lockout_in_the_admin_is_recorded(admin_user, trail, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        Client(REMOTE_ADDR=IP).post("/admin/login/", {"username": "victim", "password": "x"})
    attempt = AccessAttempt.objects.get(username="victim")
    client = logged_in(admin_user)
    trail.mark()
    response = client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not AccessAttempt.objects.exists()
    event = trail.one("admin.deleted")
    assert event.object_type == "axes.accessattempt"
    assert event.changes["username"] == ["victim", None]


def test_admin_cannot_revert_history_or_resubmit_tasks_around_the_trail(admin_user):
    target = TargetFactory(name="ops", channel="email", address="ops@example.com")
    target.address = "changed@example.com"
    target.save()
    version = target.history.order_by("history_id").first()
    client = logged_in(admin_user)
    reverted = client.post(
        f"/admin/alerts/target/{target.pk}/history/{version.history_id}/",
        target_form(address="attacker@example.com"),
    )
    assert reverted.status_code in (403, 404)
    target.refresh_from_db()
    assert target.address == "changed@example.com"
    page = client.get("/admin/django_q/failure/")
    assert page.status_code == 200 and b"resubmit_task" not in page.content
