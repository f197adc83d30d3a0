"""The audit tables are append-only in the database: updates, deletes, truncates, upserts and
flushes are refused by guards that every migration leaves installed."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from audit import db_guards, services
from audit.models import Checkpoint
from tests.audit.helpers import chain, record, verify

# The database refuses changes ------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET action = 'x' WHERE id = 1",
        "DELETE FROM audit_auditevent WHERE id = 1",
        "DELETE FROM audit_auditevent",
        "UPDATE audit_checkpoint SET hash = 'x'",
        "DELETE FROM audit_checkpoint",
        "UPDATE audit_chainhead SET sequence = 0",
        "DELETE FROM audit_chainhead",
    ],
)
def test_the_database_refuses_to_change_the_trail(db, sql):
    record(2)
    services.checkpoint_create()
    refused = pytest.raises(DatabaseError, match=r"audit\.immutable")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert len(chain()) == 2 and Checkpoint.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["audit_auditevent", "audit_checkpoint", "audit_chainhead"])
def test_postgres_refuses_truncate(db, table):
    record(1)
    refused = pytest.raises(DatabaseError, match=r"audit\.immutable")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table} CASCADE")
    assert len(chain()) == 1


def test_flush_cannot_wipe_the_trail_outside_test_databases(db, settings):
    record(1)
    settings.AUDIT_ALLOW_FLUSH = False
    with pytest.raises((DatabaseError, CommandError)):
        call_command("flush", interactive=False, verbosity=0)
    assert len(chain()) == 1


@pytest.mark.parametrize("table", ["audit_auditevent", "audit_checkpoint", "audit_chainhead"])
def test_replace_into_cannot_rewrite_a_row(db, table):
    """SQLite's INSERT OR REPLACE deletes without firing delete triggers; PostgreSQL's upsert
    is an UPDATE. Either way the row stays as it was."""
    record(2)
    services.checkpoint_create()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY id LIMIT 1")
        columns = [c[0] for c in cursor.description]
        row = list(cursor.fetchone())
    before = dict(zip(columns, row, strict=True))
    for name in ("hash", "sequence", "action"):
        if name in before:
            row[columns.index(name)] = 0 if name == "sequence" else "forged"
    marks = ", ".join(["%s"] * len(row))
    if connection.features.guard_dialect == "postgresql":
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != "id")
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
        sql += f"ON CONFLICT (id) DO UPDATE SET {updates}"
    else:
        sql = f"REPLACE INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    refused = pytest.raises(DatabaseError, match=r"audit\.immutable")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, row)
    assert verify().status == "ok"


def test_every_guard_is_installed_after_all_migrations(db):
    """A later migration that rebuilds an audit table (SQLite does that for many schema
    changes) would drop its triggers silently: this fails until it reinstalls them."""
    with connection.cursor() as cursor:
        if connection.features.guard_dialect == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'O' "
                "AND tgrelid::regclass::text LIKE 'audit_%%'"
            )
            expected = {
                f"{t}_{s}" for t in db_guards.IMMUTABLE for s in ("immutable", "no_truncate")
            }
            expected |= {"audit_chainhead_forward", "audit_chainhead_no_truncate"}
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            expected = set(db_guards.SQLITE_TRIGGERS)
        installed = {row[0] for row in cursor.fetchall()}
    assert expected <= installed, expected - installed
