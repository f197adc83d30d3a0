"""Every ledger endpoint and admin page against every role."""

from decimal import Decimal

import pytest

from alerts.services import raise_alert
from integrity.services import checks_run, deadletter_create
from tests.audit.factories import AuditEventFactory
from tests.conftest import ROLES, line
from tests.finance.factories import JournalEntryFactory

ALL = set(ROLES)
C, AP, AU, OP, AD = "finance_clerk", "finance_approver", "auditor", "operator", "admin"

# (method, path template, roles allowed)
API = [
    ("get", "/api/v1/accounts/", ALL),
    # Everyone lists and ends their own sessions, and only theirs (tests/config/test_sessions.py).
    ("get", "/api/v1/auth/sessions/", ALL),
    ("post", "/api/v1/auth/sessions/end-others/", ALL),
    ("post", "/api/v1/accounts/", {AD}),
    ("patch", "/api/v1/accounts/{account}/", {AD}),
    ("delete", "/api/v1/accounts/{account}/", {AD}),
    ("get", "/api/v1/accounts/{account}/balance/", ALL),
    ("get", "/api/v1/accounts/{account}/statement/", ALL),
    ("get", "/api/v1/trial-balance/", ALL),
    ("get", "/api/v1/balances/", ALL),
    ("get", "/api/v1/periods/", ALL),
    ("post", "/api/v1/periods/", {AD}),
    ("post", "/api/v1/periods/{period}/close/", {AP, AD}),
    ("post", "/api/v1/periods/{period}/reopen/", {AD}),
    ("get", "/api/v1/entries/", ALL),
    ("get", "/api/v1/entries/{entry}/", ALL),
    ("post", "/api/v1/entries/", {C}),
    # Batches post system entries: no role, only an integration granted the permission.
    ("post", "/api/v1/entries/batch/", set()),
    ("patch", "/api/v1/entries/{entry}/", {C}),
    ("delete", "/api/v1/entries/{entry}/", {C}),
    ("post", "/api/v1/entries/{entry}/submit/", {C}),
    ("post", "/api/v1/entries/{entry}/reject/", {AP}),
    ("post", "/api/v1/entries/{entry}/approve/", {AP}),
    ("post", "/api/v1/entries/{entry}/post/", {AP}),
    ("post", "/api/v1/entries/{entry}/reverse/", {AP}),
    ("get", "/api/v1/dead-letters/", {AU, OP, AD}),
    ("get", "/api/v1/dead-letters/{letter}/", {AU, OP, AD}),
    ("post", "/api/v1/dead-letters/{letter}/retry/", {OP, AD}),
    ("post", "/api/v1/dead-letters/{letter}/discard/", {OP, AD}),
    ("get", "/api/v1/alerts/", {OP, AD}),
    ("post", "/api/v1/alerts/{alert}/acknowledge/", {OP, AD}),
    ("post", "/api/v1/alerts/{alert}/resolve/", {OP, AD}),
    # Everyone lists audit events; without audit.view_auditevent only their own (tests/audit).
    ("get", "/api/v1/audit/events/", ALL),
    ("get", "/api/v1/audit/objects/finance.journalentry/{entry}/timeline/", {AU, OP, AD}),
    ("get", "/api/v1/audit/users/{user}/activity/", {AU, OP, AD}),
    ("get", "/api/v1/audit/status/", {AU, OP, AD}),
    ("get", "/api/v1/audit/verifications/", {AU, OP, AD}),
    ("post", "/api/v1/audit/verifications/", {AU, OP, AD}),
    ("get", "/api/v1/audit/checkpoints/", {AU, OP, AD}),
    ("get", "/api/v1/audit/export/", {AU}),
    ("get", "/api/v1/backups/", {AU, OP, AD}),
    ("get", "/api/v1/drills/", {AU, OP, AD}),
    ("get", "/api/v1/checks/", {AP, AU, OP, AD}),
    ("get", "/api/v1/checks/integrity.scheduler_alive/trend/", {AP, AU, OP, AD}),
    ("get", "/api/v1/check-runs/", {AP, AU, OP, AD}),
    ("get", "/api/v1/check-runs/{run}/", {AP, AU, OP, AD}),
    ("post", "/api/v1/check-runs/", {AP, OP, AD}),
    ("get", "/api/v1/check-findings/", {AP, AU, OP, AD}),
    ("get", "/api/v1/check-findings/{finding}/", {AP, AU, OP, AD}),
    ("post", "/api/v1/check-findings/{finding}/explain/", {AP, OP, AD}),
]

ADMIN = [
    ("/admin/my-sessions/", ALL),
    ("/admin/finance/account/", ALL),
    ("/admin/finance/account/add/", {AD}),
    ("/admin/finance/journalentry/", ALL),
    ("/admin/finance/journalentry/add/", {C}),
    ("/admin/finance/journalentry/{entry}/change/", ALL),
    ("/admin/finance/fiscalperiod/", ALL),
    ("/admin/finance/fiscalperiod/add/", {AD}),
    ("/admin/auth/user/", {AD}),
    ("/admin/axes/accessattempt/", {AD}),
    ("/admin/django_q/schedule/", {AD}),
    ("/admin/integrity/deadletter/", {AU, OP, AD}),
    ("/admin/integrity/deadletter/{letter}/change/", {AU, OP, AD}),
    ("/admin/monitoring/errorgroup/", {AU, OP, AD}),
    ("/admin/alerts/alert/", {OP, AD}),
    ("/admin/audit/auditevent/", {AU, OP, AD}),
    ("/admin/audit/auditevent/{event}/change/", {AU, OP, AD}),
    ("/admin/audit/auditevent/add/", set()),
    ("/admin/audit/checkpoint/", {AU, OP, AD}),
    ("/admin/audit/verification/", {AU, OP, AD}),
    ("/admin/integrity/checkrun/", {AP, AU, OP, AD}),
    ("/admin/integrity/checkrun/{run}/change/", {AP, AU, OP, AD}),
    ("/admin/integrity/checkrun/trend/integrity.scheduler_alive/", {AP, AU, OP, AD}),
    ("/admin/integrity/finding/", {AP, AU, OP, AD}),
    ("/admin/integrity/finding/{finding}/change/", {AP, AU, OP, AD}),
    ("/admin/integrity/finding/{finding}/explain/", {AP, OP, AD}),
    ("/admin/integrity/finding/{finding}/withdraw/", {AP, OP, AD}),
]


@pytest.fixture
def objects(ledger, clerk):
    entry = JournalEntryFactory(
        entry_date=ledger.today,
        description="x",
        lines=[line(ledger.cash, "D", Decimal("1.00")), line(ledger.equity, "C", Decimal("1.00"))],
        created_by=clerk,
    )
    letter = deadletter_create(operation="test.nothing", payload={})
    alert = raise_alert(source="test", key="matrix", severity="info", title="Matrix")
    event = AuditEventFactory(action="test.matrix", obj=entry, actor=clerk)
    run = checks_run(trigger="command", checks=["integrity.scheduler_alive"])  # no heartbeat
    return {
        "run": run.pk,
        "finding": run.findings.get().pk,
        "account": ledger.overdraft.pk,
        "period": entry.period_id,
        "entry": entry.pk,
        "letter": letter.pk,
        "alert": alert.pk,
        "event": event.pk,
        "user": clerk.pk,
    }


@pytest.mark.parametrize("role", ROLES)
def test_api_permissions(api, make_user, objects, role):
    client = api.as_user(make_user(role))
    for method, template, allowed in API:
        response = getattr(client, method)(template.format(**objects), {}, format="json")
        denied = response.status_code == 403
        assert denied != (role in allowed), (role, method, template, response.status_code)
        assert response.status_code < 500, (role, method, template)


@pytest.mark.parametrize("role", ROLES)
def test_admin_pages(client, make_user, objects, role):
    client.force_login(make_user(role))
    for template, allowed in ADMIN:
        response = client.get(template.format(**objects))
        assert (response.status_code == 200) == (role in allowed), (
            role,
            template,
            response.status_code,
        )
        assert response.status_code in (200, 302, 403)
