"""Tampering as a database superuser would: triggers off, change rows, triggers back on."""

from django.db import connection

from audit import db_guards
from audit.canonical import content_of, event_hash


def _sqlite_triggers(table: str) -> list[str]:
    return [sql for sql in db_guards._sqlite_statements() if f" ON {table} " in sql]


def tamper(*sqls: str, params=None, table: str = "audit_auditevent") -> None:
    tables = [table] if isinstance(table, str) else list(table)
    with connection.cursor() as cursor:
        for t in tables:
            if connection.vendor == "postgresql":
                cursor.execute(f"ALTER TABLE {t} DISABLE TRIGGER USER")
            else:
                for name in db_guards.SQLITE_TRIGGERS:
                    if name.startswith(t):
                        cursor.execute(f"DROP TRIGGER {name}")
        for sql in sqls:
            cursor.execute(sql, params)
        for t in tables:
            if connection.vendor == "postgresql":
                cursor.execute(f"ALTER TABLE {t} ENABLE TRIGGER USER")
            else:
                for sql in _sqlite_triggers(t):
                    cursor.execute(sql)


def rewrite_chain(*, change_id: int, actor_repr: str) -> None:
    """Change one event and recompute every hash after it, and the head: a consistent forgery
    that only the signed checkpoints can expose."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT hash FROM audit_auditevent WHERE id = %s", [change_id - 1])
        row = cursor.fetchone()
    from audit.canonical import GENESIS_HASH
    from audit.models import AuditEvent

    prev = row[0] if row else GENESIS_HASH
    statements, params = [], []
    for event in AuditEvent.objects.filter(id__gte=change_id).order_by("id"):
        if event.id == change_id:
            event.actor_repr = actor_repr
        event.prev_hash = prev
        prev = event_hash(content_of(event))
        statements.append((event.id, event.actor_repr, event.prev_hash, prev))
    with connection.cursor() as cursor:
        for t in ("audit_auditevent", "audit_chainhead"):
            if connection.vendor == "postgresql":
                cursor.execute(f"ALTER TABLE {t} DISABLE TRIGGER USER")
            else:
                for name in db_guards.SQLITE_TRIGGERS:
                    if name.startswith(t):
                        cursor.execute(f"DROP TRIGGER {name}")
        for event_id, repr_, prev_hash, new_hash in statements:
            cursor.execute(
                "UPDATE audit_auditevent SET actor_repr = %s, prev_hash = %s, hash = %s "
                "WHERE id = %s",
                [repr_, prev_hash, new_hash, event_id],
            )
        cursor.execute("UPDATE audit_chainhead SET hash = %s", [prev])
        for t in ("audit_auditevent", "audit_chainhead"):
            if connection.vendor == "postgresql":
                cursor.execute(f"ALTER TABLE {t} ENABLE TRIGGER USER")
            else:
                for sql in _sqlite_triggers(t):
                    cursor.execute(sql)
    del params
