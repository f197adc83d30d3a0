"""SQLite through its online backup API: a page-by-page copy made in one step, so the copy is one
consistent snapshot while the application writes (in WAL mode writers are not held up).

Only plain sqlite3 connections are used: they read or copy pages and never write rows, so the
project's triggers (which call functions that only the project's Django backend registers,
`ledger_maintenance()` and `audit_wipe()`) never fire here. The figures recorded with a backup
are read from the copy itself, so they are exactly what the archive holds.
"""

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.utils import timezone

from backups.engines.base import ArchiveReport, DatabaseTarget, Snapshot
from backups.engines.pgdump import EngineError

BUSY_TIMEOUT_SECONDS = 30.0
# Tables other than SQLite's own (sqlite_sequence, sqlite_stat1, ...).
USER_TABLES = (
    "SELECT count(*) FROM sqlite_master "
    "WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
)


def is_memory(name: str) -> bool:
    """An in-memory database (`:memory:`, `file:...?mode=memory`): nothing to copy from."""
    return name in ("", ":memory:") or "mode=memory" in name


def database_path(target: DatabaseTarget) -> Path:
    if is_memory(target.name):
        raise EngineError(f"{target.name or 'an unnamed database'} is in memory, not a file")
    return Path(target.name).absolute()


def connect(path: Path, *, read_only: bool = False, immutable: bool = False) -> sqlite3.Connection:
    """A plain connection in autocommit mode (transactions only where we open them).
    `read_only` never creates a missing file; `immutable` (an archive nobody else writes)
    also takes no locks and makes no journal or WAL file beside it."""
    if read_only or immutable:
        uri = f"{path.absolute().as_uri()}?mode=ro" + ("&immutable=1" if immutable else "")
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    else:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    # A damaged page can hold any bytes, and SQLite's reports quote them.
    conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
    return conn


def integrity_problem(conn: sqlite3.Connection) -> str:
    """'' when `PRAGMA integrity_check` (every page, every b-tree, every index against its
    table) finds nothing; else its first finding. Raises sqlite3.Error or UnicodeDecodeError
    for a file SQLite cannot read at all."""
    problems = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
    if problems == ["ok"]:
        return ""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"integrity_check: {problems[0]}{more}"


def error_text(exc: sqlite3.Error | UnicodeDecodeError) -> str:
    """SQLite's message; one that quotes a damaged name ("malformed database schema (...)")
    cannot be decoded by the sqlite3 module, so its bytes are decoded here."""
    if isinstance(exc, UnicodeDecodeError):
        return bytes(exc.object).decode("utf-8", "replace")
    return str(exc)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_figures(conn: sqlite3.Connection, key_tables: list[str]) -> dict[str, Any]:
    """What the database holds, read in one transaction: the latest applied migration per app,
    the row count of each key table that exists, the audit head."""
    conn.execute("BEGIN")
    try:
        present = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        schema_version: dict[str, str] = {}
        if "django_migrations" in present:
            # Django applies an app's migrations in dependency order and records each as it
            # goes, so the highest id per app is its latest applied migration.
            rows = conn.execute(
                "SELECT app, name FROM django_migrations WHERE id IN "
                "(SELECT max(id) FROM django_migrations GROUP BY app) ORDER BY app"
            )
            schema_version = {str(app): str(name) for app, name in rows}
        row_counts: dict[str, int] = {}
        for table in key_tables:
            if table in present:
                count = f"SELECT count(*) FROM {_quote(table)}"  # noqa: S608 - a quoted name
                row_counts[table] = int(conn.execute(count).fetchone()[0])
        audit_head: dict[str, Any] = {}
        if "audit_auditevent" in present:
            row = conn.execute(
                "SELECT id, hash FROM audit_auditevent ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is not None:
                audit_head = {"id": int(row[0]), "hash": str(row[1])}
    finally:
        conn.execute("ROLLBACK")
    return {"schema_version": schema_version, "row_counts": row_counts, "audit_head": audit_head}


@contextmanager
def sqlite_errors(doing: str) -> Iterator[None]:
    """sqlite3's errors as EngineError, in one line ("restoring x: file is not a database")."""
    try:
        yield
    except (sqlite3.Error, UnicodeDecodeError) as exc:
        raise EngineError(f"{doing}: {error_text(exc)}") from exc


class SqliteEngine:
    """The SQLite file copied with the online backup API; the archive is a SQLite file."""

    name = "sqlite"
    suffix = ".sqlite3"

    def __init__(self, temp_dir: str | Path | None = None) -> None:
        # Where archive copies are checked (check_archive); None: the system's temp directory.
        self.temp_dir = temp_dir

    def dump(self, source: DatabaseTarget, dest: Path, key_tables: list[str]) -> Snapshot:
        path = database_path(source)
        if not path.is_file():
            raise EngineError(f"{path}: no such database file")
        taken_at = timezone.now()  # the copy's snapshot starts at or after this moment
        try:
            with (
                sqlite_errors(f"copying {path.name}"),
                closing(connect(path, read_only=True)) as src,
                closing(connect(dest)) as dst,
            ):
                # One step (pages=-1, the default): the whole copy is made inside one read
                # transaction of the source, so it is one snapshot; in several steps a write
                # between them would restart the copy or mix two states.
                src.backup(dst)
                # A self-contained file: the copy carries no WAL file beside it.
                dst.execute("PRAGMA journal_mode=DELETE")
                figures = read_figures(dst, key_tables)
        except EngineError:
            dest.unlink(missing_ok=True)
            raise
        return Snapshot(taken_at=taken_at, database=str(path), **figures)

    def check_archive(self, archive: Path) -> ArchiveReport:
        if not archive.is_file():
            return ArchiveReport(ok=False, detail=f"{archive.name}: no such file")
        # On a copy: opening the archive itself could write to it (a hot journal rolled back,
        # a WAL file made beside it), and the archive must stay byte for byte as stored.
        with tempfile.TemporaryDirectory(prefix="ledgerguard-check-", dir=self.temp_dir) as tmp:
            copy = Path(tmp) / "archive.sqlite3"
            shutil.copyfile(archive, copy)  # chunked by the OS, never all in memory
            try:
                with closing(connect(copy)) as conn:
                    problem = integrity_problem(conn)
                    tables = int(conn.execute(USER_TABLES).fetchone()[0])
            except (sqlite3.Error, UnicodeDecodeError) as exc:
                detail = f"not a readable SQLite database: {error_text(exc)}"
                return ArchiveReport(ok=False, detail=detail)
        if problem:
            return ArchiveReport(ok=False, detail=problem)
        if tables == 0:
            return ArchiveReport(ok=False, detail="the archive holds no tables")
        return ArchiveReport(ok=True, detail="ok", entries=tables)

    def restore(self, archive: Path, target: DatabaseTarget) -> None:
        """The archive checked first (a damaged archive restores nothing), then copied into the
        target with the backup API, which writes the target in one transaction."""
        path = database_path(target)
        if not archive.is_file():
            raise EngineError(f"{archive}: no such file")
        doing = f"restoring {archive.name} into {path}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EngineError(f"{doing}: {exc.strerror or exc}") from None
        with sqlite_errors(doing), closing(connect(archive, immutable=True)) as src:
            # The backup API copies whatever pages it reads (a short file reads as zeros).
            problem = integrity_problem(src)
            if not problem and int(src.execute(USER_TABLES).fetchone()[0]) == 0:
                problem = "the archive holds no tables"
            if problem:
                raise EngineError(f"{doing}: nothing restored, {problem}")
            # The books are nobody else's to read: a new file (or one that a connection just
            # made, holding no table yet) is its owner's alone; a database that held tables
            # keeps the mode its owner gave it.
            fresh = self.is_empty(target)
            path.touch()
            if fresh:
                for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                    if name.exists():
                        name.chmod(0o600)
            with closing(connect(path)) as dst:
                src.backup(dst)

    def is_empty(self, target: DatabaseTarget) -> bool:
        path = database_path(target)
        if not path.exists() or path.stat().st_size == 0:
            return True
        with sqlite_errors(f"reading {path}"), closing(connect(path, read_only=True)) as conn:
            return int(conn.execute(USER_TABLES).fetchone()[0]) == 0

    def clear(self, target: DatabaseTarget) -> None:
        """Empty the database in place: an empty database copied over it with the backup API,
        in one transaction that other connections see like any other write."""
        path = database_path(target)
        if not path.exists():
            return
        with (
            sqlite_errors(f"clearing {path}"),
            closing(sqlite3.connect(":memory:")) as empty,
            closing(connect(path)) as dst,
        ):
            page_size = int(dst.execute("PRAGMA page_size").fetchone()[0])
            # A WAL database takes a copy only from a database with its page size.
            empty.execute(f"PRAGMA page_size={page_size}")
            empty.backup(dst)

    @contextmanager
    def scratch(self, like: DatabaseTarget) -> Iterator[DatabaseTarget]:
        """A file in a new temporary directory beside `like`'s file (the same disk, which has
        room for the database), removed with everything in it afterwards."""
        parent = None if is_memory(like.name) else database_path(like).parent
        if parent is not None and not parent.is_dir():
            parent = None  # the system's temporary directory
        with tempfile.TemporaryDirectory(prefix="ledgerguard-drill-", dir=parent) as tmp:
            yield replace(like, name=str(Path(tmp) / "scratch.sqlite3"))

    def inspect(self, target: DatabaseTarget, key_tables: list[str]) -> Snapshot:
        path = database_path(target)
        if not path.is_file():
            raise EngineError(f"{path}: no such database file")
        taken_at = timezone.now()
        with sqlite_errors(f"reading {path}"), closing(connect(path, read_only=True)) as conn:
            figures = read_figures(conn, key_tables)
        return Snapshot(taken_at=taken_at, database=str(path), **figures)
