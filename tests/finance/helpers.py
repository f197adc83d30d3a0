"""Helpers the finance tests share.

Tampering with the ledger as a database superuser would: guards off, change rows, guards on. For
the checks' tests (test_checks*.py), the books they corrupt and what `run_checks`, its stored run
and its alert say.
For the API tests (test_api_*.py), an entry's body and the documented error shape.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from alerts.models import Alert
from config import registry
from config.db.features import guard_dialect
from finance.db_guards import SqliteGuards
from finance.models import JournalEntry
from integrity.models import CheckRun

LEDGER_TABLES = ("finance_journalentry", "finance_journalline")
ENTRIES = "/api/v1/entries/"


@contextmanager
def guards_off() -> Iterator[object]:
    """A cursor with the ledger guards (finance/db_guards.py) disabled (PostgreSQL) or dropped
    (SQLite), and put back afterwards."""
    postgres = connection.features.disables_triggers
    with connection.cursor() as cursor:
        if postgres:
            # Tests never commit: fire the deferred balance checks queued so far (ALTER TABLE
            # refuses a table with pending trigger events), then switch the guards off.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in LEDGER_TABLES:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        else:
            for name in SqliteGuards.triggers:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        try:
            yield cursor
        finally:
            if postgres:
                for table in LEDGER_TABLES:
                    cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            else:
                columns = [f.column for f in JournalEntry._meta.concrete_fields]
                for sql in SqliteGuards().statements(columns):
                    cursor.execute(sql)


def tamper(sql: str, params=()) -> None:
    with guards_off() as cursor:
        cursor.execute(sql, list(params))


@contextmanager
def check_constraint_off(table: str, name: str) -> Iterator[None]:
    """Writes that break the CHECK constraint `name` of `table` are let through (a constraint
    dropped by a careless migration or a restore). PostgreSQL: dropped, and added back NOT VALID
    (rows already there are not judged); SQLite: CHECK constraints ignored meanwhile."""
    with connection.cursor() as cursor:
        if guard_dialect(connection) == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s", [name]
            )
            (definition,) = cursor.fetchone()
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            try:
                yield
            finally:
                cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition} NOT VALID")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        else:
            cursor.execute("PRAGMA ignore_check_constraints = ON")
            try:
                yield
            finally:
                cursor.execute("PRAGMA ignore_check_constraints = OFF")


# What the checks say ------------------------------------------------------------------------


@dataclass
class Books:
    funding: JournalEntry  # cash D 100 / equity C 100
    rent: JournalEntry  # expense D 40 / cash C 40
    euros: JournalEntry  # bank EUR D 50 / capital EUR C 50


def alert(name: str) -> Alert | None:
    return Alert.objects.filter(source="checks", key=name).order_by("-pk").first()


def latest_run() -> CheckRun:
    return CheckRun.objects.order_by("-pk").first()


def command_fails(name: str, *args: str) -> CheckRun:
    """`run_checks` (the finance tag unless told otherwise) exits 1 naming `name` as failing."""
    with pytest.raises(CommandError) as exc:
        call_command("run_checks", *(args or ("--tag", "finance")))
    assert exc.value.returncode == 1
    assert f"{name} (fail)" in str(exc.value)
    run = latest_run()
    assert run.results.get(check_name=name).status == "fail"
    firing = alert(name)
    assert firing.state == "firing"
    assert firing.severity == registry.all_checks()[name].severity
    return run


def command_passes(name: str, *args: str) -> CheckRun:
    """After the fix: `run_checks` exits 0, the check passes and its alert is resolved."""
    call_command("run_checks", *(args or ("--tag", "finance")))
    run = latest_run()
    assert run.results.get(check_name=name).status == "pass"
    assert alert(name).state == "resolved"
    return run


def finding(run: CheckRun, name: str, **filters):
    return run.findings.get(check_name=name, **filters)


# The API -------------------------------------------------------------------------------------


def body(ledger, amount_d="100.00", amount_c=None, **extra):
    return {
        "entry_date": ledger.today.isoformat(),
        "description": "Office supplies",
        "lines": [
            {"account": ledger.expense.pk, "side": "D", "amount": amount_d},
            {"account": ledger.cash.pk, "side": "C", "amount": amount_c or amount_d},
        ],
        **extra,
    }


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    data = response.json()
    assert set(data) == {"error"}
    assert set(data["error"]) == {"code", "message", "fields"}
    assert data["error"]["code"] == code
    return data["error"]
