import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from aiosmtpd.controller import Controller
from django.apps import apps
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from alerts import services as alert_services
from config.db.commit import recognise_test_blocks
from config.roles import ROLE_NAMES, sync_roles
from finance import services
from finance.models import Account, AccountType
from tests import receivers
from tests.factories import AccountFactory, UserFactory, make_year
from tests.receivers import Inbox, free_port
from tests.secrets_guard import _secrets_guard_installed, secrets_guard  # noqa: F401 - fixtures

# aiosmtpd logs every connection at INFO from its server's thread, which can outlive the output
# pytest captured for a test and then prints "--- Logging error ---" tracebacks into the run's
# log; its warnings and errors still show.
logging.getLogger("mail.log").setLevel(logging.WARNING)

ROLES = ("finance_clerk", "finance_approver", "auditor", "operator", "admin")

# The helpers that tests share assert on their behalf: pytest rewrites their asserts as it does a
# test module's, so that a failure there shows its values (registered before their first import).
pytest.register_assert_rewrite("tests.audit.helpers", "tests.finance.helpers")


def pytest_configure(config):
    # Django marks the atomic blocks a TestCase (pytest-django's `db`) opens around a test;
    # work held until commit is written where they stand in for it (config/db/commit.py).
    recognise_test_blocks(lambda block: getattr(block, "_from_testcase", False))


def pytest_collection_modifyitems(config, items):
    on_postgres = connection.features.guard_dialect == "postgresql"
    skip = pytest.mark.skip(reason="needs PostgreSQL (DATABASE_URL=postgres://...)")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip)


@pytest.fixture
def make_user(db):
    def make(*roles: str, **kwargs):
        if Group.objects.filter(name__in=ROLE_NAMES).count() < len(ROLE_NAMES):
            sync_roles(apps, None)  # a transactional test's flush removed the migration's rows
        return UserFactory(roles=list(roles), **kwargs)

    return make


@pytest.fixture
def clerk(make_user):
    return make_user("finance_clerk", username="clerk")


@pytest.fixture
def approver(make_user):
    return make_user("finance_approver", username="approver")


@pytest.fixture
def approver2(make_user):
    return make_user("finance_approver", username="approver2")


@pytest.fixture
def auditor(make_user):
    return make_user("auditor", username="auditor")


@pytest.fixture
def operator(make_user):
    return make_user("operator", username="operator")


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", username="boss")


@pytest.fixture
def api():
    """An API client; `api.as_user(u)` authenticates it."""

    client = APIClient()

    def as_user(user):
        client.force_authenticate(user)
        return client

    client.as_user = as_user
    return client


@dataclass
class Ledger:
    cash: Account
    bank_eur: Account
    receivables: Account
    revenue: Account
    expense: Account
    equity: Account
    equity_eur: Account
    overdraft: Account
    today: object


@pytest.fixture
def ledger(db) -> Ledger:
    today = timezone.localdate()
    for year in {today.year - 1, today.year, (today + timedelta(days=40)).year}:
        make_year(year)
    return Ledger(
        cash=AccountFactory(code="1000", name="Cash", type=AccountType.ASSET),
        bank_eur=AccountFactory(code="1020", name="Bank EUR", currency="EUR"),
        receivables=AccountFactory(code="1100", name="Receivables", is_control=True),
        revenue=AccountFactory(code="4000", name="Sales", type=AccountType.INCOME),
        expense=AccountFactory(code="6000", name="Rent", type=AccountType.EXPENSE),
        equity=AccountFactory(code="3000", name="Capital", type=AccountType.EQUITY),
        equity_eur=AccountFactory(
            code="3010", name="Capital EUR", type=AccountType.EQUITY, currency="EUR"
        ),
        overdraft=AccountFactory(code="1005", name="Overdraft", allow_negative=True),
        today=today,
    )


def line(account, side, amount, **extra):
    return {"account": account, "side": side, "amount": amount, **extra}


@pytest.fixture
def post(ledger, clerk, approver):
    """Post a balanced entry through the full maker-checker workflow."""

    def do(debit, credit, amount="100.00", *, entry_date=None, description="Test entry"):
        entry = services.journal_entry_create(
            entry_date=entry_date or ledger.today,
            description=description,
            lines=[line(debit, "D", Decimal(amount)), line(credit, "C", Decimal(amount))],
            created_by=clerk,
        )
        services.journal_entry_submit(entry=entry, actor=clerk)
        return services.journal_entry_approve(entry=entry, actor=approver)

    return do


@pytest.fixture
def alerts(monkeypatch):
    """Every raise_alert call, as the dicts of its keyword arguments."""
    raised: list[dict] = []
    monkeypatch.setattr(alert_services, "raise_alert", lambda **kw: raised.append(kw))
    return raised


@pytest.fixture(autouse=True)
def backup_dir(settings, tmp_path):
    """Every test gets its own backup location (audit checkpoints, later backups)."""
    settings.BACKUP_DIR = tmp_path / "backups"
    return settings.BACKUP_DIR


@pytest.fixture(autouse=True)
def _outbound_blocked():
    """Outbound email, SMS and webhooks are blocked unless the test started a real local
    receiver for them (tests/receivers.py: Receiver, the smtp fixture, free_port)."""
    receivers.block_outbound()
    yield
    receivers.unblock_outbound()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in the cache: each test starts with none."""
    cache.clear()
    yield


@pytest.fixture
def smtp(settings):
    """A real local SMTP server (aiosmtpd) that Django's mail goes to; yields its inbox."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    yield inbox
    controller.stop()
