"""Capture in the ledger: account, period and journal entry changes write their audit events in
the same transaction as the change; a refused change writes none, and a retried operation leaves
only the events of the attempt that committed."""

from decimal import Decimal

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from config.errors import DomainError
from finance import services
from finance.models import EntryStatus, FiscalPeriod
from integrity.models import DeadLetter
from tests.audit.helpers import IP, UA
from tests.conftest import line
from tests.finance.faults import RESULT_CLAIM, SEQUENCE_BUMP, statement_fault, statements

pytestmark = pytest.mark.usefixtures("only_catalogued_actions")


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
    # The draft and the posting are recorded, then the fault (at the attempt's last statement:
    # recording claims its key with the result, `Operation.claim_last`).
    with (
        CaptureQueriesContext(connection) as queries,
        statement_fault(
            RESULT_CLAIM, lambda: SerializationFailure("could not serialize access"), times=1
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
