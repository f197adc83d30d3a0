"""A guard over the whole suite: no secret the suite uses ever reaches a log record, an error-log
event, an audit event or an alert (its title, details, events and deliveries).

Secrets are collected as the tests make them: the settings' secrets (at start and whenever a
test sets one), every password set on a user or used to log in, every API token issued and
every signed acknowledge link. At the end of each test (before its database is rolled back)
the records logged during it, and the rows of those tables, are searched for each secret: a
few queries per test that uses the database, none for the others. A hit fails the test, saying
where the secret was found.

Values shorter than MIN_LENGTH are not searched: `SECRET_KEY=x` would match every text.
SECRETS_GUARD=0 in the environment turns the guard off (to measure what it costs).
"""

import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.signals import setting_changed

from alerts.models import Alert, AlertEvent, Delivery
from audit.models import AuditEvent
from monitoring.models import ErrorEvent, ErrorGroup
from tests.factories import PASSWORD

MIN_LENGTH = 8
ENABLED = os.environ.get("SECRETS_GUARD", "1") != "0"
SECRET_SETTINGS = (
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "AUDIT_SIGNING_KEY",
    "AUDIT_SIGNING_OLD_KEYS",
    "AUDIT_CHECKPOINT_WITNESS_SECRET",
    "ALERT_WEBHOOK_SECRET",
    "SMS_AUTH_TOKEN",
    "BACKUP_ENCRYPTION_KEY",
    "BACKUP_S3_SECRET_ACCESS_KEY",
    "MONITORING_METRICS_TOKEN",
    "EMAIL_HOST_PASSWORD",
)
# The rows searched, table by table: (model, the fields holding text).
SEARCHED = (
    (AuditEvent, ("action", "object_repr", "actor_repr", "user_agent", "changes", "metadata")),
    (ErrorEvent, ("message", "traceback", "payload", "route", "user_repr")),
    (ErrorGroup, ("message", "culprit", "exception_type")),
    (Alert, ("title", "details")),
    (AlertEvent, ("note",)),
    (Delivery, ("last_error", "response", "items")),
)
DB_FIXTURES = (
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "live_server",
)


class Secrets:
    def __init__(self) -> None:
        self.lasting: set[str] = set()  # for the whole run
        self.current: set[str] = set()  # seen during the running test

    def add(self, *values: Any, lasting: bool = False) -> None:
        for value in _flat(values):
            if isinstance(value, bytes):
                value = value.decode(errors="replace")
            if isinstance(value, str) and len(value) >= MIN_LENGTH:
                (self.lasting if lasting else self.current).add(value)

    def all(self) -> set[str]:
        return self.lasting | self.current


class Collector(logging.Handler):
    """Every record that reaches the root logger during a test."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


SECRETS = Secrets()
COLLECTOR = Collector()
_FORMATTER = logging.Formatter()


def _flat(values: Iterable[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list | tuple | set | frozenset):
            yield from _flat(value)
        else:
            yield value


def _patch_everywhere(module: str, name: str, wrap: Callable[[Any], Any]) -> None:
    """Replace a function in its module and in every module that imported it by name."""
    original = getattr(sys.modules[module], name)
    wrapped = wrap(original)
    for loaded in list(sys.modules.values()):
        namespace = getattr(loaded, "__dict__", None)
        if namespace is not None and namespace.get(name) is original:
            setattr(loaded, name, wrapped)


def _recording_result(pick: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def wrap(original):
        def recorded(*args, **kwargs):
            result = original(*args, **kwargs)
            SECRETS.add(pick(result))
            return result

        return recorded

    return wrap


def _install() -> None:
    """Once per run: the hooks that collect secrets, and the root handler."""
    SECRETS.add(PASSWORD, lasting=True)
    SECRETS.add([getattr(settings, name, "") for name in SECRET_SETTINGS], lasting=True)
    SECRETS.add(settings.DATABASES["default"].get("PASSWORD", ""), lasting=True)

    set_password = AbstractBaseUser.set_password

    def recorded_set_password(self, raw_password):
        # Not on the blank user ModelBackend hashes a refused password with (for timing).
        if self.pk is not None or self.get_username():
            SECRETS.add(raw_password)
        return set_password(self, raw_password)

    AbstractBaseUser.set_password = recorded_set_password  # type: ignore[method-assign]

    authenticate = ModelBackend.authenticate

    def recorded_authenticate(self, request, username=None, password=None, **kwargs):
        user = authenticate(self, request, username=username, password=password, **kwargs)
        # A password that logs in is a secret; a refused one is a guess (the fuzzer's are
        # words like "completed", which the trail holds for other reasons).
        if user is not None:
            SECRETS.add(password)
        return user

    ModelBackend.authenticate = recorded_authenticate  # type: ignore[method-assign]

    _patch_everywhere("config.tokens", "api_token_create", _recording_result(lambda r: r[1]))
    _patch_everywhere("alerts.acklinks", "ack_token", _recording_result(lambda r: r))

    def on_setting_changed(sender, setting, value, enter, **kwargs):
        if setting in SECRET_SETTINGS and enter:
            SECRETS.add(value)
        elif setting == "DATABASES" and enter and value:
            SECRETS.add(value.get("default", {}).get("PASSWORD", ""))

    setting_changed.connect(on_setting_changed, weak=False, dispatch_uid="secrets_guard")


def _record_text(record: logging.LogRecord) -> str:
    try:
        text = record.getMessage()
    except Exception:  # noqa: BLE001 - a record with bad arguments still has its parts
        text = f"{record.msg} {record.args}"
    if record.exc_info:
        text += "\n" + _FORMATTER.formatException(record.exc_info)
    elif record.exc_text:
        text += "\n" + record.exc_text
    if record.stack_info:
        text += "\n" + record.stack_info
    return f"log record {record.name} {record.levelname}: {text}"


def _row_texts() -> Iterator[str]:
    for model, fields in SEARCHED:
        for pk, *values in model.objects.values_list("pk", *fields):
            yield f"{model._meta.label} {pk}: {values!r}"


def _leaks(texts: Iterable[str], secrets: set[str]) -> list[str]:
    found = []
    for text in texts:
        for secret in secrets:
            if secret in text:
                shown = secret[:4] + "…"
                found.append(f"{shown} in {text[:300]}")
    return found


def findings(*, uses_database: bool) -> list[str]:
    """Where each secret seen so far appears in this test's log records and (when it uses the
    database) in the searched rows."""
    texts: list[str] = [_record_text(r) for r in COLLECTOR.records]
    if uses_database:
        texts.extend(_row_texts())
    return _leaks(texts, SECRETS.all())


def _uses_database(request: pytest.FixtureRequest) -> bool:
    if request.node.get_closest_marker("django_db"):
        return True
    return any(name in request.fixturenames for name in DB_FIXTURES)


@pytest.fixture(scope="session", autouse=True)
def _secrets_guard_installed():
    _install()
    yield


@pytest.fixture(autouse=True)
def secrets_guard(request, _secrets_guard_installed):
    """Fails the test when a secret it used reached a log record, an error-log event, an audit
    event or an alert. `request.node.secrets_guard_off = True` turns it off for a test that
    writes a secret on purpose (none does today)."""
    if not ENABLED:
        yield SECRETS
        return
    uses_database = _uses_database(request)
    if uses_database:
        # Set up the database now, so that it is rolled back after this guard has looked.
        request.getfixturevalue("_django_db_helper")
    root = logging.getLogger()
    if COLLECTOR not in root.handlers:  # a test that reconfigured logging dropped it
        root.addHandler(COLLECTOR)
    COLLECTOR.records.clear()
    SECRETS.current.clear()
    yield SECRETS
    if getattr(request.node, "secrets_guard_off", False):
        return
    leaks = findings(uses_database=uses_database)
    COLLECTOR.records.clear()
    if leaks:
        pytest.fail("secrets leaked:\n" + "\n".join(leaks[:20]), pytrace=False)
