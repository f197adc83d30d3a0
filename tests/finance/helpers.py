"""Tampering with the ledger as a database superuser would: guards off, change rows, guards on."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from config.db.features import guard_dialect
from finance.db_guards import SqliteGuards
from finance.models import JournalEntry

LEDGER_TABLES = ("finance_journalentry", "finance_journalline")


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
