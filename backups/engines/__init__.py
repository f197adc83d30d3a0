"""The backup engines, and which one serves a database.

`engine_for(connection)` picks the engine for the database a connection uses (by its guard
dialect, config/db/features.py); `engine_named(name)` the engine that took an existing backup
(its `Backup.engine`). `target_for(alias)` says where a configured database is. `KEY_TABLES`
are the tables whose row counts are recorded with each backup and compared after a restore.
"""

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.db import connections

from backups.engines.base import ArchiveReport, BackupEngine, DatabaseTarget, Snapshot
from backups.engines.pgdump import EngineError, PgDumpEngine
from backups.engines.sqlite import SqliteEngine, is_memory
from config.db.features import guard_dialect

# The ledger's and the audit trail's key tables, and the users who act on them. Names, not
# models: backups does not import finance.
KEY_TABLES: list[str] = [
    "auth_user",
    "finance_account",
    "finance_fiscalperiod",
    "finance_journalentry",
    "finance_journalline",
    "finance_accountbalance",
    "audit_auditevent",
    "audit_checkpoint",
]

# Backup.Engine value -> the archive engine. pgBackRest keeps its backups in its own repository
# and is driven by backups/services/physical.py instead.
ENGINES: dict[str, Callable[[], BackupEngine]] = {
    SqliteEngine.name: SqliteEngine,
    PgDumpEngine.name: PgDumpEngine,
}

# Guard dialect -> the engine that backs up such a database unless another is chosen.
DEFAULT_ENGINES: dict[str, str] = {
    "sqlite": SqliteEngine.name,
    "postgresql": PgDumpEngine.name,
}


def engine_named(name: str) -> BackupEngine:
    """The engine called `name` (a Backup.Engine value)."""
    try:
        factory = ENGINES[name]
    except KeyError:
        raise EngineError(f"no backup engine called {name!r}") from None
    return factory()


def engine_for(connection_or_vendor: Any) -> BackupEngine:
    """The engine for a database: a connection (its guard dialect) or a dialect name
    ("sqlite", "postgresql", as DatabaseTarget.vendor has it)."""
    if isinstance(connection_or_vendor, str):
        dialect = connection_or_vendor
    else:
        dialect = guard_dialect(connection_or_vendor)
    if dialect not in DEFAULT_ENGINES:
        raise EngineError(f"no backup engine for {dialect!r} databases")
    return engine_named(DEFAULT_ENGINES[dialect])


def target_for(alias: str = "default") -> DatabaseTarget:
    """Where the configured database `alias` is (a SQLite file as an absolute path). Read from
    the connection's settings, which are `settings.DATABASES[alias]` (with the test database's
    name while tests run)."""
    connection = connections[alias]
    target = DatabaseTarget.from_settings(connection.settings_dict, guard_dialect(connection))
    if target.vendor == "sqlite" and not is_memory(target.name):
        # A relative name (sqlite:///var/x.sqlite3) means the same file to a child process.
        return replace(target, name=str(Path(target.name).absolute()))
    return target


__all__ = [
    "DEFAULT_ENGINES",
    "ENGINES",
    "KEY_TABLES",
    "ArchiveReport",
    "BackupEngine",
    "DatabaseTarget",
    "EngineError",
    "PgDumpEngine",
    "Snapshot",
    "SqliteEngine",
    "engine_for",
    "engine_named",
    "target_for",
]
