"""The database keeps the audit trail append-only, whoever connects to it.

- Events and checkpoints: no UPDATE, no DELETE, no TRUNCATE.
- The chain head: no DELETE or TRUNCATE, and an UPDATE must move it forward.

The owner of the tables (and a superuser) can still disable the triggers: run the application
as a role that does not own them (config/db/roles.py, docs/audit.md); the hash chain and the
signed checkpoints catch what the owner changes. Installed by migrations, one implementation per
engine.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from config.db.features import guard_dialect
from config.db.guards import limit_app_role, register_flush_stand_down, register_sqlite_function
from config.db.maintenance import in_maintenance

IMMUTABLE = ("audit_auditevent", "audit_checkpoint")
GUARDED = (*IMMUTABLE, "audit_chainhead")

# All the application's role may do to them when it does not own them (config/db/roles.py):
# append events and checkpoints, move the head. DISABLE TRIGGER, TRUNCATE and DROP need the owner.
APP_ROLE_PRIVILEGES = {
    "audit_auditevent": ("SELECT", "INSERT"),
    "audit_checkpoint": ("SELECT", "INSERT"),
    "audit_chainhead": ("SELECT", "INSERT", "UPDATE"),
}

POSTGRES_INSTALL = (
    """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit.immutable: % on % is refused; the audit trail is append-only',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION audit_head_forward() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.sequence > OLD.sequence THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit.immutable: the audit chain head only moves forward (% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END $$ LANGUAGE plpgsql;
"""
    + "".join(
        f"""
CREATE TRIGGER {t}_immutable BEFORE UPDATE OR DELETE ON {t}
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
"""
        for t in IMMUTABLE
    )
    + """
CREATE TRIGGER audit_chainhead_forward BEFORE UPDATE OR DELETE ON audit_chainhead
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward();
CREATE TRIGGER audit_chainhead_no_truncate BEFORE TRUNCATE ON audit_chainhead
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
"""
)

POSTGRES_UNINSTALL = (
    "".join(
        f"DROP TRIGGER IF EXISTS {t}_immutable ON {t};\nDROP TRIGGER IF EXISTS {t}_no_truncate ON {t};\n"
        for t in IMMUTABLE
    )
    + """
DROP TRIGGER IF EXISTS audit_chainhead_forward ON audit_chainhead;
DROP TRIGGER IF EXISTS audit_chainhead_no_truncate ON audit_chainhead;
DROP FUNCTION IF EXISTS audit_head_forward();
DROP FUNCTION IF EXISTS audit_refuse_change();
"""
)


def sqlite_statements() -> list[str]:
    refuse = "BEGIN SELECT RAISE(ABORT, 'audit.immutable: the audit trail is append-only'); END"
    statements = []
    for t in IMMUTABLE:
        statements += [
            f"CREATE TRIGGER {t}_no_update BEFORE UPDATE ON {t} {refuse}",
            f"CREATE TRIGGER {t}_no_delete BEFORE DELETE ON {t} WHEN NOT audit_wipe() {refuse}",
        ]
    for t in GUARDED:
        # INSERT OR REPLACE deletes the old row without firing delete triggers.
        statements.append(
            f"CREATE TRIGGER IF NOT EXISTS {t}_no_replace BEFORE INSERT ON {t} "
            f"WHEN EXISTS (SELECT 1 FROM {t} WHERE id = NEW.id) {refuse}"
        )
    statements += [
        "CREATE TRIGGER audit_chainhead_forward BEFORE UPDATE ON audit_chainhead "
        f"WHEN NEW.id <> OLD.id OR NEW.sequence <= OLD.sequence {refuse}",
        f"CREATE TRIGGER audit_chainhead_no_delete BEFORE DELETE ON audit_chainhead "
        f"WHEN NOT audit_wipe() {refuse}",
    ]
    return statements


SQLITE_TRIGGERS = [
    *(f"{t}_{suffix}" for t in IMMUTABLE for suffix in ("no_update", "no_delete")),
    *(f"{t}_no_replace" for t in GUARDED),
    "audit_chainhead_forward",
    "audit_chainhead_no_delete",
]


def wipe_allowed() -> bool:
    """A whole-table wipe is under way where the audit trail may be wiped (test databases:
    a production flush stops at the audit tables and rolls back)."""
    return in_maintenance() and settings.AUDIT_ALLOW_FLUSH


def register() -> None:
    """Called by AuditConfig.ready: the plumbing's backends and commands learn of the guards."""
    register_sqlite_function("audit_wipe", lambda: int(wipe_allowed()))
    register_flush_stand_down("audit", stand_down_for_flush)
    limit_app_role(APP_ROLE_PRIVILEGES)


def install(apps, schema_editor) -> None:
    vendor = guard_dialect(schema_editor.connection)
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_INSTALL, params=None)
    elif vendor == "sqlite":
        for sql in sqlite_statements():
            schema_editor.execute(sql)
    else:
        raise NotImplementedError(f"no audit guards for {vendor}")


def uninstall(apps, schema_editor) -> None:
    if guard_dialect(schema_editor.connection) == "postgresql":
        schema_editor.execute(POSTGRES_UNINSTALL, params=None)
    else:
        for name in SQLITE_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")


@contextmanager
def stand_down_for_flush(connection) -> Iterator[None]:
    """PostgreSQL: disable the audit triggers around a flush where AUDIT_ALLOW_FLUSH is on.

    (SQLite's triggers ask `audit_wipe()` instead.) Without the setting nothing is disabled and
    the flush's TRUNCATE is refused.
    """
    if not connection.features.disables_triggers or not settings.AUDIT_ALLOW_FLUSH:
        yield
        return
    with connection.cursor() as cursor:
        for table in GUARDED:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for table in GUARDED:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def install_sqlite_replace_guards(apps, schema_editor) -> None:
    """Migration 0003: the no-replace triggers, for databases migrated before they existed."""
    if guard_dialect(schema_editor.connection) != "sqlite":
        return
    for sql in sqlite_statements():
        if "_no_replace " in sql:
            schema_editor.execute(sql)


def uninstall_sqlite_replace_guards(apps, schema_editor) -> None:
    if guard_dialect(schema_editor.connection) == "sqlite":
        for t in GUARDED:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {t}_no_replace")
