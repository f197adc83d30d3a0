"""The one interface every backup engine implements (one implementation per engine).

An engine knows how to take a consistent copy of a database, how to prove a copy is readable,
how to restore one, and how to make a scratch database to restore into for a drill. It knows
nothing of storage, compression, encryption, models or alerts: `backups/services/` does that.

Databases are named by `DatabaseTarget`, built from a Django `DATABASES` entry or from a
`DATABASE_URL` (django-environ's format), so that a restore can go to a server the running
application is not connected to. Passwords travel in the child process's environment
(`PGPASSWORD`), never on a command line.
"""

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import environ


@dataclass(frozen=True)
class DatabaseTarget:
    """Where a database is: SQLite's file (`name`), or a PostgreSQL server and database."""

    vendor: str  # "sqlite" or "postgresql" (the guard dialect of config/db/features.py)
    name: str  # the SQLite file path, or the PostgreSQL database name
    host: str = ""
    port: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)

    def url(self) -> str:
        """A DATABASE_URL for this target (what a child `manage.py` process is given)."""
        if self.vendor == "sqlite":
            return f"sqlite:///{self.name}"
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        netloc = f"{auth}@{self.host}" if auth else self.host
        if self.port:
            netloc += f":{self.port}"
        return f"postgres://{netloc}/{quote(self.name, safe='')}"

    @classmethod
    def from_settings(cls, db: Mapping[str, Any], vendor: str) -> "DatabaseTarget":
        """From a Django DATABASES entry (`vendor` from the connection's guard dialect)."""
        return cls(
            vendor=vendor,
            name=str(db.get("NAME") or ""),
            host=str(db.get("HOST") or ""),
            port=str(db.get("PORT") or ""),
            user=str(db.get("USER") or ""),
            password=str(db.get("PASSWORD") or ""),
            options=dict(db.get("OPTIONS") or {}),
        )

    @classmethod
    def from_url(cls, url: str) -> "DatabaseTarget":
        """From a DATABASE_URL (django-environ's format: sqlite:///path, postgres://...)."""
        db = environ.Env.db_url_config(url)
        engine = str(db.get("ENGINE", ""))
        if "sqlite" in engine:
            vendor = "sqlite"
        elif "postgres" in engine:
            vendor = "postgresql"
        else:
            raise ValueError(f"not a SQLite or PostgreSQL URL: {engine or url.split(':')[0]}")
        return cls.from_settings(db, vendor)


@dataclass
class Snapshot:
    """What the database held as of the copy: recorded on the Backup row."""

    taken_at: datetime
    schema_version: dict[str, str]  # {app_label: latest applied migration}
    row_counts: dict[str, int]  # {table: rows} for the key tables
    audit_head: dict[str, Any]  # {"id": ..., "hash": ...} of the newest audit event
    database: str = ""
    label: str = ""  # pgBackRest: the backup set's label


@dataclass
class ArchiveReport:
    """What reading an archive back proved (`pg_restore -l`, `PRAGMA integrity_check`)."""

    ok: bool
    detail: str  # "ok", or the first problem found
    entries: int = 0  # table-of-contents entries (pg_restore -l), pages or tables (SQLite)


class BackupEngine(Protocol):
    """One engine. `name` is the Backup.Engine value; `suffix` the archive's file suffix."""

    name: str
    suffix: str

    def dump(self, source: DatabaseTarget, dest: Path, key_tables: list[str]) -> Snapshot:
        """Write a consistent copy of `source` to the local file `dest` while the application
        writes, and return what it holds (counted in the same snapshot as the copy)."""
        ...

    def check_archive(self, archive: Path) -> ArchiveReport:
        """Read the archive back without restoring it into a server: its table of contents,
        or an integrity check of a copy."""
        ...

    def restore(self, archive: Path, target: DatabaseTarget) -> None:
        """Restore the archive into `target`, which the caller made sure is empty."""
        ...

    def clear(self, target: DatabaseTarget) -> None:
        """Remove everything `target` holds (a forced restore over a non-empty database)."""
        ...

    def is_empty(self, target: DatabaseTarget) -> bool:
        """True when `target` holds no tables (a restore may go there without --force)."""
        ...

    def scratch(self, like: DatabaseTarget) -> AbstractContextManager[DatabaseTarget]:
        """A context manager: an empty scratch database on the same kind of server as `like`
        (a temporary file, or a temporary database), dropped afterwards."""
        ...

    def inspect(self, target: DatabaseTarget, key_tables: list[str]) -> Snapshot:
        """What `target` holds now (a restored copy): migrations, row counts, audit head."""
        ...


# What a child process (a client tool, pgBackRest, a drill's server) gets of our environment,
# besides LC_* and the variables of its own prefix: nothing of the application's secrets.
CHILD_ENVIRONMENT = frozenset(
    {"PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR", "HOME", "USER", "LOGNAME"}
)


def child_environment(prefix: str) -> dict[str, str]:
    """Our environment as a child tool gets it: CHILD_ENVIRONMENT, LC_* and `prefix`*."""
    return {
        key: value
        for key, value in os.environ.items()
        if key in CHILD_ENVIRONMENT or key.startswith(("LC_", prefix))
    }
