"""PostgreSQL through pg_dump's custom format, and the PostgreSQL client plumbing engines share.

The dump is one snapshot: our own connection opens a REPEATABLE READ, READ ONLY transaction,
exports its snapshot (`pg_export_snapshot()`), counts the key tables in it and keeps it open
while `pg_dump --snapshot` copies exactly the same snapshot. So the figures recorded with a
backup are what the archive holds, whatever the application commits meanwhile.

The client tools come from `bin_dir` (the engine's argument), else PATH, else the newest
`/usr/lib/postgresql/<version>/bin` (Debian's layout). They get every connection setting as
arguments or environment variables, and the password only in `PGPASSWORD`.
"""

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from backups.engines.base import ArchiveReport, DatabaseTarget, Snapshot, child_environment

DEBIAN_BIN_DIRS = Path("/usr/lib/postgresql")
MAINTENANCE_DATABASE = "postgres"
SCRATCH_PREFIX = "ledgerguard_drill_"

# Django's OPTIONS for a PostgreSQL database that are libpq connection settings, and the
# environment variable that gives each to a client tool. Other OPTIONS (isolation_level,
# server_side_binding, pool, ...) are Django's own and mean nothing to libpq.
LIBPQ_OPTIONS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "channel_binding": "PGCHANNELBINDING",
    "gssencmode": "PGGSSENCMODE",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
}

# What makes a database "not empty", outside the system schemas: anything a restore could
# collide with. Relations (composite types too), functions, domains, enums and range types,
# and schemas besides `public`; what an extension brought is the extension's.
USER_OBJECTS = """
    WITH user_ns AS (
        SELECT oid, nspname FROM pg_namespace
        WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%'
    ), extension_members AS (
        SELECT objid FROM pg_depend WHERE deptype = 'e'
    )
    SELECT
        (SELECT count(*) FROM pg_class c JOIN user_ns n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c')
           AND c.oid NOT IN (SELECT objid FROM extension_members))
      + (SELECT count(*) FROM pg_proc p JOIN user_ns n ON n.oid = p.pronamespace
         WHERE p.oid NOT IN (SELECT objid FROM extension_members))
      + (SELECT count(*) FROM pg_type t JOIN user_ns n ON n.oid = t.typnamespace
         WHERE t.typtype IN ('d', 'e', 'r')
           AND t.oid NOT IN (SELECT objid FROM extension_members))
      + (SELECT count(*) FROM user_ns WHERE nspname <> 'public'
           AND oid NOT IN (SELECT objid FROM extension_members))
"""

USER_SCHEMAS = """
    SELECT nspname FROM pg_namespace
    WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%' ORDER BY nspname
"""


class EngineError(Exception):
    """An engine could not do its work (a tool failed, a database refused); the message says
    why in one line: the tool's or the server's own words where there are some.

    Every engine raises it (`backups.engines.EngineError`); it lives here, beside the tools
    that raise it most, because the engine modules share no other module but `base`."""


def first_line(text: str) -> str:
    """The first non-empty line of a (multi-line) server or library message."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def tool_message(tool: str, stderr: str, returncode: int) -> str:
    """One line saying why a client tool failed: its last `<tool>: error:` line (a failed
    query is followed by the statement's lines), else its last line, else its exit status."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(f"{tool}: error:")]
    if errors:
        return errors[-1]
    if lines:
        return lines[-1]
    return f"{tool} exited with status {returncode}"


def find_tool(name: str, bin_dir: str | Path | None = None) -> str:
    """The path of a PostgreSQL client tool: in `bin_dir` when given, else on PATH, else in the
    newest `/usr/lib/postgresql/<version>/bin`."""
    if bin_dir:
        candidate = Path(bin_dir) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        raise EngineError(f"{name} not found in the PostgreSQL bin directory {bin_dir}")
    found = shutil.which(name)
    if found:
        return found
    candidates = [p for p in DEBIAN_BIN_DIRS.glob(f"*/bin/{name}") if os.access(p, os.X_OK)]
    if candidates:
        return str(max(candidates, key=lambda p: _version_key(p.parent.parent.name)))
    raise EngineError(
        f"{name} not found on PATH nor in {DEBIAN_BIN_DIRS}/*/bin: install the PostgreSQL "
        "client tools (Debian: apt-get install postgresql-client) or name their directory"
    )


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)


def connect_kwargs(target: DatabaseTarget, dbname: str = "") -> dict[str, Any]:
    """psycopg.connect() arguments for `target` (or another database on its server)."""
    kwargs: dict[str, Any] = {"dbname": dbname or target.name}
    for key, value in (
        ("host", target.host),
        ("port", target.port),
        ("user", target.user),
        ("password", target.password),
    ):
        if value:
            kwargs[key] = value
    for key in LIBPQ_OPTIONS:
        if target.options.get(key) not in (None, ""):
            kwargs[key] = str(target.options[key])
    return kwargs


def tool_arguments(target: DatabaseTarget) -> list[str]:
    """Command-line connection arguments for pg_dump and pg_restore: never the password.

    The database goes as a connection string that names only it (`dbname='...'`), so that a
    name holding `=` or starting `postgresql://` is read as a name and nothing else."""
    args: list[str] = []
    if target.host:
        args += ["--host", target.host]
    if target.port:
        args += ["--port", target.port]
    if target.user:
        args += ["--username", target.user]
    return [*args, "--dbname", make_conninfo(dbname=target.name)]


def tool_environment(target: DatabaseTarget) -> dict[str, str]:
    """The child's environment: what a client tool reads of ours (libpq's PG* defaults, which
    the application's own connections read too, locale, PATH), none of the application's
    other secrets, and the password and libpq options of `target`."""
    env = child_environment("PG")
    if target.password:
        env["PGPASSWORD"] = target.password
    for key, variable in LIBPQ_OPTIONS.items():
        if target.options.get(key) not in (None, ""):
            env[variable] = str(target.options[key])
    return env


def run_tool(argv: Sequence[str], target: DatabaseTarget | None, *, capture: bool = False) -> str:
    """Run a client tool (an argument list, no shell); return its standard output when
    `capture`. A failure raises EngineError with the tool's own last error line."""
    tool = Path(argv[0]).name
    env = tool_environment(target) if target is not None else child_environment("PG")
    try:
        done = subprocess.run(  # noqa: S603 - a PostgreSQL client tool, an argument list
            list(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            check=False,
        )
    except OSError as exc:
        raise EngineError(f"{tool} could not be started: {exc}") from exc
    if done.returncode != 0:
        raise EngineError(tool_message(tool, done.stderr, done.returncode))
    return done.stdout if capture else ""


@contextmanager
def database_errors(doing: str) -> Iterator[None]:
    """psycopg's errors as EngineError, in one line ("reading x: connection failed: ...")."""
    try:
        yield
    except psycopg.Error as exc:
        raise EngineError(f"{doing}: {first_line(str(exc)) or type(exc).__name__}") from exc


def _quote(table: str) -> sql.Composable:
    return sql.Identifier(table)


def read_figures(cursor: psycopg.Cursor[Any], key_tables: list[str]) -> dict[str, Any]:
    """What the database holds, read in the cursor's transaction (its snapshot): the latest
    applied migration per app, the row count of each key table that exists, the audit head."""
    cursor.execute(
        "SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(quote_ident(t)) IS NOT NULL",
        [["django_migrations", "audit_auditevent", *key_tables]],
    )
    present = {row[0] for row in cursor.fetchall()}
    schema_version: dict[str, str] = {}
    if "django_migrations" in present:
        # Django applies an app's migrations in dependency order and records each as it goes,
        # so the highest id per app is its latest applied migration.
        cursor.execute(
            "SELECT app, name FROM django_migrations WHERE id IN "
            "(SELECT max(id) FROM django_migrations GROUP BY app) ORDER BY app"
        )
        schema_version = {app: name for app, name in cursor.fetchall()}
    row_counts: dict[str, int] = {}
    for table in key_tables:
        if table in present:
            cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(_quote(table)))
            row = cursor.fetchone()
            row_counts[table] = int(row[0]) if row else 0
    audit_head: dict[str, Any] = {}
    if "audit_auditevent" in present:
        cursor.execute("SELECT id, hash FROM audit_auditevent ORDER BY id DESC LIMIT 1")
        row = cursor.fetchone()
        if row is not None:
            audit_head = {"id": int(row[0]), "hash": str(row[1])}
    return {"schema_version": schema_version, "row_counts": row_counts, "audit_head": audit_head}


def snapshot_connection(target: DatabaseTarget) -> psycopg.Connection[Any]:
    """A connection whose first statement opens a REPEATABLE READ, READ ONLY transaction:
    every read in it sees one snapshot."""
    conn = psycopg.connect(**connect_kwargs(target))
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    return conn


class PgDumpEngine:
    """pg_dump --format=custom, with the figures counted in the snapshot pg_dump copies."""

    name = "pg_dump"
    suffix = ".dump"

    def __init__(self, bin_dir: str | Path | None = None) -> None:
        self.bin_dir = bin_dir or None

    def tool(self, name: str) -> str:
        return find_tool(name, self.bin_dir)

    def dump_arguments(self, source: DatabaseTarget, dest: Path, snapshot_id: str) -> list[str]:
        """pg_dump's argument list (the password is not on it: `tool_environment`)."""
        return [
            self.tool("pg_dump"),
            "--format=custom",
            f"--snapshot={snapshot_id}",
            "--no-password",
            "--file",
            str(dest),
            *tool_arguments(source),
        ]

    def restore_arguments(self, archive: Path, target: DatabaseTarget) -> list[str]:
        """pg_restore's argument list: one transaction, so a failed restore leaves nothing."""
        return [
            self.tool("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
            *tool_arguments(target),
            str(archive),
        ]

    def dump(self, source: DatabaseTarget, dest: Path, key_tables: list[str]) -> Snapshot:
        self.tool("pg_dump")  # before connecting: a missing tool fails at once
        with database_errors(f"reading {source.name}"), snapshot_connection(source) as conn:
            with conn.cursor() as cursor:
                # Our transaction only waits while pg_dump works: a server-wide idle timeout
                # must not end it (and the exported snapshot with it) before pg_dump imports it.
                cursor.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
                cursor.execute("SELECT pg_export_snapshot(), transaction_timestamp()")
                snapshot_id, taken_at = _one(cursor)
                figures = read_figures(cursor, key_tables)
            try:
                # While the exporting transaction stays open (the snapshot lives as long).
                run_tool(self.dump_arguments(source, dest, str(snapshot_id)), source)
            except EngineError:
                dest.unlink(missing_ok=True)
                raise
            conn.rollback()
        return Snapshot(taken_at=_utc(taken_at), database=source.name, **figures)

    def check_archive(self, archive: Path) -> ArchiveReport:
        if not archive.is_file():
            return ArchiveReport(ok=False, detail=f"{archive.name}: no such file")
        pg_restore = self.tool("pg_restore")
        try:
            listing = run_tool([pg_restore, "--list", str(archive)], None, capture=True)
        except EngineError as exc:
            return ArchiveReport(ok=False, detail=f"the table of contents does not read: {exc}")
        entries = [
            line for line in listing.splitlines() if line.strip() and not line.startswith(";")
        ]
        if not any(" TABLE DATA " in line for line in entries):
            return ArchiveReport(
                ok=False, detail="the archive lists no TABLE DATA", entries=len(entries)
            )
        # --list reads only the table of contents at the start of the file; reading the whole
        # archive out as a script (thrown away) decompresses every data block, so a damaged or
        # truncated block fails here instead of at the restore.
        try:
            run_tool([pg_restore, "--file", os.devnull, str(archive)], None)
        except EngineError as exc:
            detail = f"the data does not read: {exc}"
            return ArchiveReport(ok=False, detail=detail, entries=len(entries))
        return ArchiveReport(ok=True, detail="ok", entries=len(entries))

    def restore(self, archive: Path, target: DatabaseTarget) -> None:
        run_tool(self.restore_arguments(archive, target), target)

    def is_empty(self, target: DatabaseTarget) -> bool:
        with (
            database_errors(f"reading {target.name}"),
            psycopg.connect(**connect_kwargs(target), autocommit=True) as conn,
        ):
            (objects,) = _one(conn.execute(USER_OBJECTS))
        return int(objects) == 0

    def clear(self, target: DatabaseTarget) -> None:
        """Drop every non-system schema with all it holds, in one transaction, and make the
        `public` schema again as PostgreSQL makes it (owned by the same role, usable by all)."""
        with (
            database_errors(f"clearing {target.name}"),
            psycopg.connect(**connect_kwargs(target)) as conn,
        ):
            schemas = [row[0] for row in conn.execute(USER_SCHEMAS).fetchall()]
            (owner,) = _one(
                conn.execute(
                    "SELECT coalesce((SELECT nspowner::regrole::text FROM pg_namespace "
                    "WHERE nspname = 'public'), 'pg_database_owner')"
                )
            )
            for schema in schemas:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            conn.execute(
                sql.SQL("CREATE SCHEMA public AUTHORIZATION {}").format(sql.Identifier(owner))
            )
            conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")

    @contextmanager
    def scratch(self, like: DatabaseTarget) -> Iterator[DatabaseTarget]:
        name = SCRATCH_PREFIX + secrets.token_hex(8)
        ident = sql.Identifier(name)
        # template0: nothing an administrator added to template1 ends up in the scratch.
        create = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(ident)
        self._maintenance(like, create, f"creating the scratch database {name}")
        try:
            yield replace(like, name=name)
        finally:
            # FORCE: a drill's child process that is still connected does not keep it alive.
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident)
            self._maintenance(like, drop, f"dropping the scratch database {name}")

    def inspect(self, target: DatabaseTarget, key_tables: list[str]) -> Snapshot:
        with database_errors(f"reading {target.name}"), snapshot_connection(target) as conn:
            with conn.cursor() as cursor:
                cursor.execute("SELECT transaction_timestamp()")
                (taken_at,) = _one(cursor)
                figures = read_figures(cursor, key_tables)
            conn.rollback()
        return Snapshot(taken_at=_utc(taken_at), database=target.name, **figures)

    def _maintenance(self, like: DatabaseTarget, statement: sql.Composed, doing: str) -> None:
        """Run CREATE or DROP DATABASE on `like`'s server, from its maintenance database
        (`postgres`), or from `like`'s own database where `postgres` refuses us."""
        try:
            conn = psycopg.connect(**connect_kwargs(like, MAINTENANCE_DATABASE), autocommit=True)
        except psycopg.OperationalError:
            conn = None
        with database_errors(doing):
            if conn is None:
                conn = psycopg.connect(**connect_kwargs(like), autocommit=True)
            with conn:
                conn.execute(statement)


def _one(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    row = cursor.fetchone()
    if row is None:
        raise EngineError("the server returned no row")
    return tuple(row)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
