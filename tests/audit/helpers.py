"""Tampering as a database superuser would: triggers off, change rows, triggers back on."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from audit import db_guards
from audit.canonical import GENESIS_HASH, content_of, event_hash
from audit.models import AuditEvent


@contextmanager
def triggers_off(*tables: str) -> Iterator[object]:
    """A cursor with the audit guards of `tables` disabled (PostgreSQL) or dropped (SQLite),
    and put back afterwards."""
    with connection.cursor() as cursor:
        for t in tables:
            if connection.features.disables_triggers:
                cursor.execute(f"ALTER TABLE {t} DISABLE TRIGGER USER")
            else:
                for name in db_guards.SQLITE_TRIGGERS:
                    if name.startswith(t):
                        cursor.execute(f"DROP TRIGGER {name}")
        yield cursor
        for t in tables:
            if connection.features.disables_triggers:
                cursor.execute(f"ALTER TABLE {t} ENABLE TRIGGER USER")
            else:
                for sql in db_guards.sqlite_statements():
                    if f" ON {t} " in sql:
                        cursor.execute(sql)


def tamper(*sqls: str, params=None, table: str = "audit_auditevent") -> None:
    with triggers_off(table) as cursor:
        for sql in sqls:
            cursor.execute(sql, params)


def rewrite_chain(*, change_id: int, actor_repr: str) -> None:
    """Change one event and recompute every hash after it, and the head: a consistent forgery
    that only the signed checkpoints can expose."""
    before = AuditEvent.objects.filter(id=change_id - 1).values_list("hash", flat=True).first()
    prev = before or GENESIS_HASH
    rows = []
    for event in AuditEvent.objects.filter(id__gte=change_id).order_by("id"):
        if event.id == change_id:
            event.actor_repr = actor_repr
        event.prev_hash = prev
        prev = event_hash(content_of(event))
        rows.append([event.actor_repr, event.prev_hash, prev, event.id])
    with triggers_off("audit_auditevent", "audit_chainhead") as cursor:
        cursor.executemany(
            "UPDATE audit_auditevent SET actor_repr = %s, prev_hash = %s, hash = %s WHERE id = %s",
            rows,
        )
        cursor.execute("UPDATE audit_chainhead SET hash = %s", [prev])
