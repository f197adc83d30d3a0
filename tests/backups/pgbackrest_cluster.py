"""A throwaway PostgreSQL cluster with a pgBackRest stanza, for the tests that drive pgBackRest
for real (tests/backups/test_pgbackrest.py, tests/backups/test_pgbackrest_services.py).

initdb in a temporary directory, WAL archived with `archive-push`, a repository in the same
directory, the server on 127.0.0.1 and a private socket; stopped and removed afterwards,
whatever the tests did. Not a conftest.py: test modules make their own fixture from
`throwaway_cluster()`.
"""

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backups.engines.base import DatabaseTarget
from backups.engines.pgbackrest import (
    LocalServer,
    PgBackRest,
    PgBackRestError,
    ServerUser,
    make_work_dir,
    postgres_bindir,
    run_as,
    server_user,
)

PGBACKREST = shutil.which("pgbackrest")

# Module marks of a test module that drives it.
NEEDS_PGBACKREST = [
    pytest.mark.postgres,
    # One cluster per worker: under `pytest -n N --dist loadgroup` a module's tests share one.
    pytest.mark.xdist_group("pgbackrest"),
    pytest.mark.skipif(
        PGBACKREST is None,
        reason="pgBackRest is not installed: `make install-test` installs it as root on "
        "Debian/Ubuntu, else `sudo apt-get install pgbackrest`",
    ),
]


@dataclass
class Cluster:
    root: Path
    user: ServerUser | None
    server: LocalServer
    config: Path
    repo: Path
    engine: PgBackRest
    stanza: str
    database: str

    @property
    def source(self) -> DatabaseTarget:
        """The database, over the private socket."""
        return DatabaseTarget(
            vendor="postgresql",
            name=self.database,
            host=str(self.server.socket_dir),
            port=str(self.server.port),
            user="postgres",
        )

    def url(self) -> str:
        """The database as a DATABASE_URL (TCP on 127.0.0.1; initdb's trust authentication)."""
        return f"postgres://postgres@127.0.0.1:{self.server.port}/{self.database}"

    def sql(self, query: str, params: Any = None, *, dbname: str | None = None) -> list[tuple]:
        with psycopg.connect(
            host=str(self.server.socket_dir),
            port=self.server.port,
            dbname=dbname or self.database,
            user="postgres",
            autocommit=True,
        ) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def archive_current_wal(self) -> None:
        """Switch to a new WAL segment and wait until `archive-push` has stored the old one."""
        segment = self.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
        deadline = time.monotonic() + 60
        failed = None
        while time.monotonic() < deadline:
            archived, failed = self.sql(
                "SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver"
            )[0]
            if archived and archived >= segment:
                return
            time.sleep(0.1)
        raise AssertionError(f"WAL {segment} not archived (last failed: {failed})")


def os_chown(path: Path, user: ServerUser) -> None:
    shutil.chown(path, user.uid, user.gid)


@contextmanager
def throwaway_cluster(stanza: str, database: str, *, retention_full: int = 2) -> Iterator[Cluster]:
    """A running cluster with an empty `database` and a created, checked `stanza` (pytest
    skips when no PostgreSQL server binaries are installed)."""
    try:
        bindir = postgres_bindir()
    except PgBackRestError as exc:
        pytest.skip(str(exc))
    user = server_user()
    root = make_work_dir(user, prefix="ledgerguard-pgbackrest-test.")
    server: LocalServer | None = None
    try:
        for name in ("socket", "repo", "log", "lock", "spool", "drills"):
            (root / name).mkdir(mode=0o700)
            if user is not None:
                os_chown(root / name, user)
        data = root / "data"
        config = root / "pgbackrest.conf"
        options = ["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"]
        initdb = run_as([str(bindir / "initdb"), "-D", str(data), *options], user=user, cwd=root)
        assert initdb.returncode == 0, initdb.stderr
        # The archiving an operator configures for pgBackRest (durability off: thrown away).
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "wal_level = replica\narchive_mode = on\nmax_wal_senders = 3\n"
                f"archive_command = '{PGBACKREST} --config={config} --stanza={stanza}"
                " archive-push %p'\n"
                "fsync = off\nsynchronous_commit = off\n"
            )
        server = LocalServer(
            data,
            bindir=bindir,
            user=user,
            socket_dir=root / "socket",
            log_file=root / "postgres.log",
        )
        server.start()
        config.write_text(
            "[global]\n"
            f"repo1-path={root / 'repo'}\nrepo1-retention-full={retention_full}\n"
            f"log-path={root / 'log'}\nlock-path={root / 'lock'}\nspool-path={root / 'spool'}\n"
            "log-level-file=off\nstart-fast=y\ncompress-level=1\n"
            f"[{stanza}]\n"
            f"pg1-path={data}\npg1-port={server.port}\npg1-socket-path={root / 'socket'}\n"
            "pg1-user=postgres\n"
        )
        if user is not None:
            os_chown(config, user)
        engine = PgBackRest(stanza, config_path=config)
        made = Cluster(root, user, server, config, root / "repo", engine, stanza, database)
        made.sql(f"CREATE DATABASE {database}", dbname="postgres")
        engine.stanza_create()
        engine.check()
        yield made
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
