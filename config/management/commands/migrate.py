"""Django's migrate, as the tables' owner when DATABASE_MIGRATE_URL is set; on SQLite it
makes the database file's folder first, and after migrating it makes the database cache's
table (CACHES: throttle counts shared by every process), as `createcachetable` does.

The application then runs as DATABASE_URL's role, which does not own the tables, so it cannot
`ALTER TABLE ... DISABLE TRIGGER`, TRUNCATE or DROP them; after migrating, the owner grants that
role what it needs (`grant_app_role`), which also covers the tables this migration created.
"""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections

from config.db.features import guard_dialect
from config.db.roles import connected_as
from config.management.commands.grant_app_role import grant


def make_sqlite_folder(connection: Any) -> None:
    """SQLite makes a missing database file, not its folder (var/ in a fresh clone). Only
    migrate, which creates the database, makes it; connecting never does, since a folder that
    went away (an unmounted volume) must fail rather than start an empty ledger."""
    name = str(connection.settings_dict["NAME"])
    in_memory = name in ("", ":memory:") or name.startswith("file:")
    if guard_dialect(connection) == "sqlite" and not in_memory:
        Path(name).parent.mkdir(parents=True, exist_ok=True)


class Command(migrate.Command):
    def execute(self, *args, **options):
        # Before the system checks, which connect.
        make_sqlite_folder(connections[options.get("database") or DEFAULT_DB_ALIAS])
        return super().execute(*args, **options)

    def handle(self, *args, **options):
        owner = settings.DATABASE_MIGRATE
        if not owner or options["database"] != DEFAULT_DB_ALIAS:
            super().handle(*args, **options)
            self._cache_table(options)
            return
        connection = connections[DEFAULT_DB_ALIAS]
        role = connection.settings_dict.get("USER") or ""
        with connected_as(connection, owner):
            if options["verbosity"] >= 1:
                migrator = connection.settings_dict["USER"]
                self.stdout.write(
                    f"Migrating as {migrator!r}, the tables' owner (DATABASE_MIGRATE_URL); the "
                    f"application runs as {role!r}."
                )
            super().handle(*args, **options)
            self._cache_table(options)
            if role == connection.settings_dict.get("USER"):
                self.stderr.write(
                    "DATABASE_MIGRATE_URL names the application's own role: nothing granted, and "
                    "the application can still disable the audit triggers (docs/audit.md)."
                )
                return
            statements = grant(connection, role=role, apply=True)
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"Granted {role!r} the application's privileges ({len(statements)} statements, "
                "as manage.py grant_app_role does)."
            )

    def _cache_table(self, options: dict[str, Any]) -> None:
        """The database cache's table, when CACHES names one (idempotent; nothing for another
        cache). Not for `--plan` or `--check`, which change nothing."""
        if options.get("plan") or options.get("check_unapplied"):
            return
        call_command(
            "createcachetable", database=options["database"], verbosity=options["verbosity"]
        )
