"""Every API operation against the project's own OpenAPI schema, with Schemathesis calling the
WSGI app (no server): no input may answer a 5xx, and every answer must conform to the schema
(a documented status code, content type, headers and body). The answers the business rules
give (403, 404, 409, 422, ...) are documented in the schema, so they conform; nothing is
excluded. Schemathesis also checks that input the schema rules out is refused (a 4xx).

Two passes over every operation:
- as each role (finance_clerk, finance_approver, auditor, operator, admin) and anonymously, with
  FUZZ_MAX_EXAMPLES generated requests (the phases in FUZZ_ROLE_PHASES);
- as one user holding every role, with the coverage phase too (boundary values, wrong types,
  missing and unexpected parameters, other methods), so every operation is driven past its
  permission check into its validation and rules.

`make test` keeps the numbers small; `make fuzz` runs the same tests longer (docs/api.md).
"""

import os
from datetime import timedelta
from decimal import Decimal

import pytest
import schemathesis
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from alerts.services import raise_alert, silence_create
from audit.services import audit_record
from config.roles import ROLE_NAMES, sync_roles
from config.tokens import api_token_create
from config.wsgi import application
from finance import services as finance
from finance.models import AccountType
from integrity.services import checks_run, deadletter_create
from tests.conftest import ROLES, line
from tests.factories import AccountFactory, UserFactory, make_year

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "5"))
ROLE_PHASES = os.environ.get("FUZZ_ROLE_PHASES", "examples,fuzzing").split(",")
EVERY_ROLE = "every_role"


def _schema(phases: list[str]):
    config = SchemathesisConfig.from_dict(
        {
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "phases": {
                name: {"enabled": name in phases}
                for name in ("examples", "coverage", "fuzzing", "stateful")
            },
            "checks": {
                # Valid by the schema yet refused for a row that does not exist or a rule (an
                # account id nobody has, an entry in another state): a documented 400 or 422.
                "positive_data_acceptance": {"enabled": False},
            },
        }
    )
    loaded = schemathesis.openapi.from_dict(
        SchemaGenerator().get_schema(request=None, public=True), config=config
    )
    loaded.app = application  # the WSGI app answers the calls
    loaded.auth(refresh_interval=None)(BearerOfTheTestsRole)
    return loaded


_TOKEN: dict[str, str | None] = {"current": None}


class BearerOfTheTestsRole:
    """The token of the role the current test runs as (none: anonymous). Schemathesis sets it
    on every case except those that deliberately send a wrong Authorization header."""

    def get(self, case, context):
        return _TOKEN["current"]

    def set(self, case, data, context):
        if data:
            case.headers["Authorization"] = f"Bearer {data}"
        else:
            case.headers.pop("Authorization", None)


_WORLD_IDS: dict[str, list[int]] = {}


@schemathesis.hook
def before_call(context, case, kwargs):
    """Half the time the id in the path becomes one of the world's rows, so that operations get
    past the 404 into their rules; chosen from the generated id, so that a run replays. An id
    generated as a deliberately invalid one (negative testing) is left alone."""
    params = case.path_parameters or {}
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH):
        return
    ids = _WORLD_IDS.get(_resource(case.operation.path))
    name = next((n for n in ("id", "user_id") if n in params), None)
    value = str(params.get(name, ""))
    if ids and name and value.isascii() and value.isdigit() and int(value) % 2 == 0:
        params[name] = ids[int(value) // 2 % len(ids)]


def _resource(path: str) -> str:
    parts = path.split("/")  # /api/v1/<resource>/{id}/...
    return "users" if parts[3] == "audit" and parts[4] == "users" else parts[3]


by_role = _schema(ROLE_PHASES)
deep = _schema(["examples", "coverage", "fuzzing"])


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Rows for the ids in paths to find, made once for the module; each test runs in a
    savepoint inside this transaction and rolls back to it."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer._from_testcase = True  # like a TestCase's: durable service blocks may nest
        outer.__enter__()
        try:
            yield _build_world()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            cache.clear()  # the token endpoint's throttle counts, for the tests that follow


def _build_world() -> dict:
    if Group.objects.filter(name__in=ROLE_NAMES).count() < len(ROLE_NAMES):
        sync_roles(apps, None)
    users = {role: UserFactory(roles=[role], username=f"fuzz-{role}") for role in ROLES}
    users[EVERY_ROLE] = UserFactory(roles=list(ROLES), username="fuzz-every-role")
    # ... and what no role has: the integration's batch posting, so that it is fuzzed too.
    users[EVERY_ROLE].user_permissions.add(Permission.objects.get(codename="record_journalentry"))
    tokens = {
        role: api_token_create(user=user, name="fuzz", ttl_days=1, actor=user)[1]
        for role, user in users.items()
    }
    today = timezone.localdate()
    for year in {today.year - 1, today.year, (today + timedelta(days=40)).year}:
        make_year(year)
    cash = AccountFactory(code="1000", name="Cash")
    equity = AccountFactory(code="3000", name="Capital", type=AccountType.EQUITY)
    AccountFactory(code="1020", name="Bank EUR", currency="EUR")
    clerk, approver = users["finance_clerk"], users["finance_approver"]

    def entry(amount: str, creator=clerk):
        return finance.journal_entry_create(
            entry_date=today,
            description="fuzz",
            lines=[line(cash, "D", Decimal(amount)), line(equity, "C", Decimal(amount))],
            created_by=creator,
        )

    drafts = [entry("1.00"), entry("1.50", users[EVERY_ROLE])]
    pending = finance.journal_entry_submit(entry=entry("2.00"), actor=clerk)
    posted = finance.journal_entry_approve(
        entry=finance.journal_entry_submit(entry=entry("3.00"), actor=clerk), actor=approver
    )
    letter = deadletter_create(operation="fuzz.nothing", payload={})
    alert = raise_alert(source="fuzz", key="k", severity="warning", title="Fuzz")
    silence = silence_create(
        actor=users["operator"], reason="fuzz", ends_at=timezone.now() + timedelta(hours=1)
    )
    run = checks_run(trigger="command", checks=["integrity.scheduler_alive"])
    audit_record(action="test.fuzz", obj=drafts[0], actor=clerk)
    ids = {
        "entries": [*(d.pk for d in drafts), pending.pk, posted.pk],
        "accounts": [cash.pk, equity.pk],
        "periods": [posted.period_id],
        "dead-letters": [letter.pk],
        "alerts": [alert.pk],
        "silences": [silence.pk],
        "check-runs": [run.pk],
        "check-findings": list(run.findings.values_list("pk", flat=True)),
        "users": [u.pk for u in users.values()],
    }
    return {"tokens": tokens, "ids": ids}


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """The WSGI app is called directly: keep Django from closing the test's connection at the
    end of each request (its test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def world_ids(world):
    _WORLD_IDS.clear()
    _WORLD_IDS.update(world["ids"])


@pytest.fixture
def as_role(world, db):
    def use(role: str) -> None:
        _TOKEN["current"] = world["tokens"].get(role)

    yield use
    _TOKEN["current"] = None


@pytest.fixture(params=[*ROLES, "anonymous"])
def each_role(request, as_role):
    as_role(request.param)


@pytest.fixture
def every_role(as_role):
    as_role(EVERY_ROLE)


@by_role.parametrize()
@settings(suppress_health_check=list(HealthCheck))
def test_every_role_gets_documented_answers(case, each_role):
    case.call_and_validate()


@deep.parametrize()
@settings(suppress_health_check=list(HealthCheck))
def test_every_operation_past_its_permission_check(case, every_role):
    case.call_and_validate()
