"""The role matrix (config/rolematrix.py) against the real views: every cell of every row, and
a row for every endpoint, admin page, action, URL and command (a new one without a row fails)."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.management import get_commands
from django.urls import reverse
from rest_framework.test import APIClient

from alerts.services import raise_alert
from config import rolematrix as rm
from config.management.commands.role_matrix import END, START, render
from integrity.services import checks_run, deadletter_create
from tests.audit.factories import AuditEventFactory
from tests.config.rolematrix_observe import (
    MISSING,
    admin_custom_views,
    admin_model_cells,
    api_allowed,
    api_endpoints,
    other_paths,
)
from tests.conftest import line
from tests.finance.factories import JournalEntryFactory

PROJECT_APPS = {"config", "finance", "integrity", "audit", "backups", "monitoring", "alerts"}


@pytest.fixture
def objects(ledger, clerk):
    """One object per resource where the matrix has an object-level rule or a custom page; the
    rest of the paths take a missing id (model-level permissions are checked first)."""
    entry = JournalEntryFactory(
        entry_date=ledger.today,
        description="x",
        lines=[line(ledger.cash, "D", Decimal("1.00")), line(ledger.equity, "C", Decimal("1.00"))],
        created_by=clerk,
    )
    run = checks_run(trigger="command", checks=["integrity.scheduler_alive"])  # no heartbeat
    return {
        "accounts": ledger.overdraft.pk,
        "periods": entry.period_id,
        "entries": entry.pk,
        "dead-letters": deadletter_create(operation="test.nothing", payload={}).pk,
        "alerts": raise_alert(source="test", key="matrix", severity="info", title="M").pk,
        "events": AuditEventFactory(action="test.matrix", obj=entry, actor=clerk).pk,
        "check-runs": run.pk,
        "check-findings": run.findings.get().pk,
        "user": clerk.pk,
    }


def _client(role, make_user):
    client = APIClient()
    if role != rm.ANONYMOUS:
        client.force_login(make_user(role))
    return client


def _differences(role, rows, observe):
    wrong = []
    for row in rows:
        allowed, status = observe(row)
        # 503: the heartbeat's "the alert pipeline has not beaten", an answer, not a failure.
        assert status < 500 or status == 503, (role, row, status)
        if allowed != (role in row.roles):
            wrong.append((row, status))
    return wrong


# --- the API --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", rm.COLUMNS)
def test_api_cells(make_user, objects, role, settings):
    settings.API_DOCS_PUBLIC = False  # production's default
    client = _client(role, make_user)  # a session: the docs pages are not DRF's views
    wrong = _differences(role, rm.API, lambda e: api_allowed(client, e.method, e.path, objects))
    assert not wrong, f"{role}: the matrix says otherwise for {wrong}"


def test_every_api_endpoint_has_one_row():
    declared = sorted((e.method, e.path) for e in rm.API)
    assert len(set(declared)) == len(declared), "an endpoint has two rows"
    assert declared == api_endpoints(), "add a row to config/rolematrix.py for each endpoint"


# --- the admin ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", rm.ROLES)
def test_admin_model_cells(make_user, client, role):
    user = make_user(role)
    observed = admin_model_cells(user)
    client.force_login(user)
    for row in rm.ADMIN_MODELS:
        cell = observed[row.model]
        expected = {
            "view": role in row.view,
            "add": role in row.add,
            "change": role in row.change,
            "delete": role in row.delete,
            "actions": sorted(name for name, roles in row.actions.items() if role in roles),
        }
        assert cell == expected, (role, row.model)
        app_label, model_name = row.model.split(".")
        page = client.get(reverse(f"admin:{app_label}_{model_name}_changelist"))
        assert page.status_code == (200 if role in row.view else 403), (role, row.model)


def test_every_admin_model_has_one_row():
    declared = sorted(row.model for row in rm.ADMIN_MODELS)
    registered = sorted(model._meta.label_lower for model in admin.site._registry)
    assert declared == registered, "add an AdminModel row to config/rolematrix.py"


def _admin_view_url(name, objects):
    kwargs = {
        "integrity_checkrun_trend": {"name": "integrity.scheduler_alive"},
        "integrity_finding_explain": {"pk": objects["check-findings"]},
        "integrity_finding_withdraw": {"pk": objects["check-findings"]},
        "backups_backup_download": {"pk": MISSING},
        "my_session_end": {"pk": MISSING},
        "auth_user_password_change": {"id": objects["user"]},
        "view_on_site": {
            "content_type_id": ContentType.objects.get(model="journalentry").pk,
            "object_id": objects["entries"],
        },
    }.get(name, {})
    url = reverse(f"admin:{name}", kwargs=kwargs)
    if name == "autocomplete":  # the one autocomplete field: a line's account on an entry
        url += "?app_label=finance&model_name=journalline&field_name=account&term=c"
    return url


def _page_allowed(response):
    login = reverse("admin:login")
    refused = response.status_code in (401, 403) or (
        response.status_code == 302 and response["Location"].startswith(login)
    )
    return not refused, response.status_code


@pytest.mark.parametrize("role", rm.COLUMNS)
def test_admin_view_cells(make_user, objects, role):
    client = _client(role, make_user)
    wrong = _differences(
        role,
        rm.ADMIN_VIEWS,
        lambda v: _page_allowed(
            client.post(_admin_view_url(v.name, objects), {"tag": "none"})
            if v.method == "POST"
            else client.get(_admin_view_url(v.name, objects))
        ),
    )
    assert not wrong, f"{role}: the matrix says otherwise for {wrong}"


def test_anonymous_gets_the_login_page_for_every_model():
    client = APIClient()
    for row in rm.ADMIN_MODELS:
        app_label, model_name = row.model.split(".")
        response = client.get(reverse(f"admin:{app_label}_{model_name}_changelist"))
        assert response.status_code == 302 and "/login/" in response["Location"], row.model


def test_every_admin_view_has_one_row():
    declared = sorted(v.name for v in rm.ADMIN_VIEWS)
    assert declared == admin_custom_views(), "add an AdminView row to config/rolematrix.py"


# --- other URLs and commands ----------------------------------------------------------------


def _other_allowed(client, row):
    path = row.path.replace("/?", "/").replace("<str:token>", "not-a-signed-token")
    if row.method == "POST":
        response = client.post(path, "{}", content_type="application/csp-report")
    else:
        response = client.get(path)
    return response.status_code not in (401, 403), response.status_code


@pytest.mark.parametrize("role", rm.COLUMNS)
def test_other_url_cells(make_user, role):
    client = _client(role, make_user)
    wrong = _differences(role, rm.OTHER, lambda e: _other_allowed(client, e))
    assert not wrong, f"{role}: the matrix says otherwise for {wrong}"


def test_every_other_url_has_one_row():
    assert sorted(e.path for e in rm.OTHER) == other_paths()


def test_every_command_has_one_row():
    ours = sorted(name for name, app in get_commands().items() if app in PROJECT_APPS)
    assert sorted(c.name for c in rm.COMMANDS) == ours


def test_docs_show_the_matrix_as_declared():
    text = (Path(settings.BASE_DIR) / "docs" / "security.md").read_text()
    section = text.split(START, 1)[1].split(END, 1)[0]
    assert section == "\n" + render(), "run `manage.py role_matrix --update docs/security.md`"
