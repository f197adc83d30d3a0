"""The plumbing's registries that apps fill at ready: before-commit hooks, the audit recorder,
the database guards (config/db/commit.py, config/events.py, config/db/guards.py)."""

from contextlib import contextmanager

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection, transaction

from audit.db_guards import APP_ROLE_PRIVILEGES
from audit.models import AuditEvent
from config import events
from config.db import guards
from config.db.commit import BeforeCommitError, register_before_commit
from config.db.maintenance import in_maintenance

written: list[list[object]] = []


def write(connection, items) -> None:
    if "fail" in items:
        raise RuntimeError("cannot write")
    written.append(list(items))


register_before_commit("tests.config", write)


@pytest.fixture(autouse=True)
def _nothing_written():
    written.clear()


def test_held_items_wait_for_the_commit_and_leave_with_a_rolled_back_savepoint(db):
    with transaction.atomic():
        connection.hold("tests.config", 1)
        try:
            with transaction.atomic():
                connection.hold("tests.config", 2)
                raise ValueError
        except ValueError:
            pass
        connection.hold("tests.config", 3)
        assert written == []
    assert written == [[1, 3]]


def test_directly_under_the_tests_transaction_an_item_is_written_at_once(db):
    connection.hold("tests.config", 1)
    assert written == [[1]]


def test_outside_a_transaction_an_item_commits_in_its_own(transactional_db):
    connection.hold("tests.config", 1)
    assert written == [[1]]
    assert connection.get_autocommit()


def test_a_hook_nobody_registered_refuses_to_hold(db):
    refused = pytest.raises(ImproperlyConfigured, match="no before-commit hook 'nobody'")
    with refused, transaction.atomic():
        connection.hold("nobody", 1)


def test_a_failing_hook_rolls_the_transaction_back(transactional_db):
    with pytest.raises(BeforeCommitError, match="cannot write"), transaction.atomic():
        connection.hold("tests.config", "fail")
        events.record(action="tests.rolled_back")
    assert isinstance(BeforeCommitError("x"), DatabaseError)
    assert not AuditEvent.objects.filter(action="tests.rolled_back").exists()


def test_an_event_with_no_recorder_raises_instead_of_vanishing(db):
    audit_trail = events.register_recorder(None)
    try:
        with pytest.raises(ImproperlyConfigured, match="no audit recorder"):
            events.record(action="tests.lost")
    finally:
        events.register_recorder(audit_trail)
    assert events.recorder() is audit_trail


def test_the_audit_trail_limits_the_app_role_on_its_tables():
    assert guards.app_role_limits() == {t: tuple(p) for t, p in APP_ROLE_PRIVILEGES.items()}
    with pytest.raises(ValueError, match="registered twice"):
        guards.limit_app_role({"audit_auditevent": ("SELECT",)})


def test_flush_stand_downs_are_entered_in_order_inside_maintenance(db):
    entered = []

    @contextmanager
    def stand_down(name):
        entered.append(name)
        yield
        entered.append(f"/{name}")

    guards.register_flush_stand_down("tests.a", lambda c: stand_down("a"))
    guards.register_flush_stand_down("tests.b", lambda c: stand_down("b"))
    try:
        with guards.flush_stand_down(connection):
            assert in_maintenance()
            assert entered == ["a", "b"]
    finally:
        guards.unregister_flush_stand_down("tests.a")
        guards.unregister_flush_stand_down("tests.b")
    assert entered == ["a", "b", "/b", "/a"]
    assert not in_maintenance()


def test_sqlite_connections_get_the_registered_functions(db):
    if connection.features.guard_dialect != "sqlite":
        pytest.skip("SQLite's per-connection functions")
    guards.register_sqlite_function("tests_answer", lambda: 42)
    fresh = connection.get_new_connection(connection.get_connection_params())
    try:
        row = fresh.execute("SELECT tests_answer(), ledger_maintenance(), audit_wipe()").fetchone()
    finally:
        fresh.close()
    assert row == (42, 0, 0)
