"""Grant the application's database role what it needs, and no more (config/db/roles.py).

Connects as the tables' owner (DATABASE_MIGRATE_URL) when that is set, else as DATABASE_URL's
role (an owner or a superuser running it by hand with --role). `migrate` runs it by itself when
DATABASE_MIGRATE_URL is set.
"""

from contextlib import nullcontext

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from config.db.guards import app_role_limits
from config.db.roles import GrantError, app_role_grant, connected_as, grants_for


def grant(connection, *, role: str, apply: bool) -> list[str]:
    """The grants for `role`, written (with `apply`) over `connection` as it is logged in."""
    grantor = connection.settings_dict.get("USER") or ""
    if not role:
        raise CommandError("name the application's role with --role")
    if role == grantor:
        raise CommandError(
            f"{role!r} would grant to itself: connect as the tables' owner (set "
            "DATABASE_MIGRATE_URL), or run this as the owner with --role <application role>"
        )
    try:
        return app_role_grant(connection, role=role, limited=app_role_limits(), apply=apply)
    except GrantError as exc:
        raise CommandError(str(exc)) from exc


class Command(BaseCommand):
    help = (
        "Grant the application's database role (default: the user of DATABASE_URL) USAGE on the "
        "schema, SELECT/INSERT/UPDATE/DELETE on the tables and USAGE/SELECT on the sequences, "
        "only SELECT/INSERT on the audit trail's append-only tables, and the same by default for "
        "tables created later. Idempotent. PostgreSQL only; on SQLite there is nothing to do."
    )

    def add_arguments(self, parser):
        parser.add_argument("--role", help="The application's role (default: DATABASE_URL's).")
        parser.add_argument(
            "--print", dest="print_only", action="store_true", help="Print the SQL, run nothing."
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, role, print_only, database, **options):
        connection = connections[database]
        grants = grants_for(connection)
        if grants.nothing_to_do:
            self.stdout.write(grants.nothing_to_do)
            return
        role = role or connection.settings_dict.get("USER") or ""
        owner = settings.DATABASE_MIGRATE if database == DEFAULT_DB_ALIAS else {}
        with connected_as(connection, owner) if owner else nullcontext():
            statements = grant(connection, role=role, apply=not print_only)
        if print_only:
            self.stdout.write("\n".join(["BEGIN;", *(f"{s};" for s in statements), "COMMIT;"]))
            return
        self.stdout.write(
            f"Granted to {role!r}: reading and writing the tables, appending only to "
            f"{', '.join(app_role_limits())}; the same for tables created later "
            f"({len(statements)} statements)."
        )
