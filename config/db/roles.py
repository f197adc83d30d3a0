"""The application's database role, kept apart from the role that owns the tables.

On PostgreSQL the owner of a table may `ALTER TABLE ... DISABLE TRIGGER`, `TRUNCATE` it or drop
it, whatever the triggers say. Run the application as a role that does not own its tables
(DATABASE_URL), migrate as the owner (DATABASE_MIGRATE_URL), and give the application only the
privileges it needs: `grants_for(connection)` writes them, one implementation per engine. SQLite
has no roles: whoever can open the file can change it.
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import transaction

from config.db.features import guard_dialect
from config.errors import GrantError

Limited = Mapping[str, Sequence[str]]  # table: the only privileges the role gets on it

# Rows the running application reads but never writes. Apps add theirs (the audit trail's
# append-only tables) when they ask for the grants.
READ_ONLY = {"django_migrations": ("SELECT",)}
DML = ("SELECT", "INSERT", "UPDATE", "DELETE")
TABLE_PRIVILEGES = (*DML, "TRUNCATE", "REFERENCES", "TRIGGER")


def quote_role(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def connected_as(connection: Any, target: Mapping[str, Any]) -> Iterator[None]:
    """Within the block, `connection` logs in with `target`'s credentials (a database settings
    dict parsed from a URL: USER, PASSWORD, HOST, PORT, OPTIONS) to the database it names now
    (a test run's own database stays the one migrated); the application's own settings are
    back afterwards. Closes the connection on the way in and out."""
    original = connection.settings_dict
    swapped = dict(original)
    for key in ("USER", "PASSWORD", "HOST", "PORT"):
        if target.get(key) not in (None, ""):
            swapped[key] = target[key]
    swapped["OPTIONS"] = {**original.get("OPTIONS", {}), **target.get("OPTIONS", {})}
    connection.close()
    connection.settings_dict = swapped
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict = original


class SqliteGrants:
    vendor = "sqlite"
    nothing_to_do = (
        "SQLite has no database roles: whoever can write the database file can change any "
        "table. Nothing to grant; keep the file readable only by the application's user."
    )

    def plan(self, connection: Any, *, role: str, limited: Limited) -> list[str]:
        return []

    def excess(self, connection: Any, *, limited: Limited) -> list[str]:
        return []


class PostgresGrants:
    """USAGE on the schema; SELECT, INSERT, UPDATE, DELETE on every table and USAGE, SELECT on
    every sequence, except the `limited` tables, which get exactly their listed privileges;
    the same by default for tables and sequences the owner creates later. Anything else the
    role held on these tables (TRUNCATE, TRIGGER, REFERENCES, or more on a limited table) is
    revoked first, so the result is the same whatever was granted before."""

    vendor = "postgresql"
    nothing_to_do = ""

    def _owner(self, cursor: Any, schema: str) -> str:
        cursor.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = %s AND tablename = %s",
            [schema, "django_migrations"],
        )
        row = cursor.fetchone()
        if row is None:
            raise GrantError(f"no tables in schema {schema!r} yet: run `manage.py migrate` first")
        return str(row[0])

    def plan(self, connection: Any, *, role: str, limited: Limited) -> list[str]:
        """The statements, read from the database's catalog (nothing is changed)."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            schema = cursor.fetchone()[0]
            owner = self._owner(cursor, schema)
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone() is None:
                raise GrantError(f"there is no database role {role!r}; create it first")
            if role == owner:
                raise GrantError(
                    f"role {role!r} owns the tables, so no grant can take anything from it. "
                    "Migrate as another role (DATABASE_MIGRATE_URL) that owns them: "
                    f"REASSIGN OWNED BY {quote_role(role)} TO <owner> (docs/audit.md)."
                )
            cursor.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tableowner = %s "
                "ORDER BY tablename",
                [schema, role],
            )
            own = [r[0] for r in cursor.fetchall()]
            if own:
                raise GrantError(
                    f"role {role!r} owns {len(own)} table(s) ({', '.join(own[:5])}...): "
                    f"transfer them to {owner!r} first, as a superuser: "
                    f"REASSIGN OWNED BY {quote_role(role)} TO {quote_role(owner)};"
                )
            cursor.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)",
                [schema, list(limited)],
            )
            present = {r[0] for r in cursor.fetchall()}
        q = connection.ops.quote_name
        s, r, o = q(schema), quote_role(role), quote_role(owner)
        statements = [
            f"GRANT USAGE ON SCHEMA {s} TO {r}",
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}",
            f"GRANT {', '.join(DML)} ON ALL TABLES IN SCHEMA {s} TO {r}",
        ]
        for table in sorted(present):
            statements += [
                f"REVOKE ALL ON {s}.{q(table)} FROM {r}",
                f"GRANT {', '.join(limited[table])} ON {s}.{q(table)} TO {r}",
            ]
        statements += [
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {r}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} "
            f"GRANT {', '.join(DML)} ON TABLES TO {r}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} "
            f"GRANT USAGE, SELECT ON SEQUENCES TO {r}",
        ]
        return statements

    def excess(self, connection: Any, *, limited: Limited) -> list[str]:
        """What the connected role can do to the `limited` tables beyond their privileges:
        being a superuser, owning them (or being a member of their owner: DISABLE TRIGGER,
        DROP), holding other privileges."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            row = cursor.fetchone()
            if row and row[0]:
                return ["is a superuser"]
            found = []
            for table, allowed in sorted(limited.items()):
                extra = [p for p in TABLE_PRIVILEGES if p not in allowed]
                checks = ", ".join(f"has_table_privilege(c.oid, '{p}')" for p in extra)
                cursor.execute(
                    f"SELECT pg_has_role(c.relowner, 'MEMBER'), {checks} FROM pg_class c "  # noqa: S608
                    "WHERE c.oid = to_regclass(%s)",
                    [table],
                )
                row = cursor.fetchone()
                if row is None:
                    continue
                if row[0]:
                    found.append(f"owns {table}")
                    continue
                held = [p for p, has in zip(extra, row[1:], strict=True) if has]
                if held:
                    found.append(f"may {', '.join(held)} {table}")
            return found


_GRANTS: dict[str, PostgresGrants | SqliteGrants] = {
    "postgresql": PostgresGrants(),
    "sqlite": SqliteGrants(),
}


def grants_for(connection: Any) -> PostgresGrants | SqliteGrants:
    return _GRANTS[guard_dialect(connection)]  # guard_dialect refuses other backends


def app_role_grant(
    connection: Any, *, role: str, limited: Limited, apply: bool = True
) -> list[str]:
    """Plan the application role's grants and, with `apply`, run them in one transaction (a
    role that briefly held no privileges would fail requests). Idempotent. Returns them."""
    grants = grants_for(connection)
    statements = grants.plan(connection, role=role, limited={**READ_ONLY, **limited})
    if apply and statements:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)
    return statements
