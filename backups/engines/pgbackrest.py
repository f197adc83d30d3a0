"""PostgreSQL physical backups with pgBackRest, for databases too large for a logical dump.

Ledgerguard does not replace pgBackRest: the operator configures the stanza (pgbackrest.conf,
`archive_command`, `stanza-create`) and this module drives and checks it. It takes backups
(`pgbackrest backup`), reads what the repository holds (`pgbackrest info --output=json`),
proves the repository readable (`pgbackrest verify`) and runs restore drills: the backup set,
or a point in time, restored into a temporary data directory and started as a temporary
server on 127.0.0.1, which the caller inspects and which is then stopped and removed.

Every command is an argument list (never a shell). pgBackRest and the PostgreSQL server run as
the data directory's owner: when we are root that is the `postgres` user (initdb and postgres
refuse to run as root, and a repository written by root could no longer be written by
`archive-push`), like scripts/with-postgres.sh. Tested with pgBackRest 2.45 (Debian 12).
"""

import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from backups.engines.base import DatabaseTarget, Snapshot, child_environment

BACKUP_TYPES = ("full", "diff", "incr")

# The audit chain's table (audit.models.AuditEvent); the engine reads it by name, like the
# key tables the caller names, so that it needs no models.
AUDIT_TABLE = "audit_auditevent"

# Connection options from a DATABASES entry that are libpq's own (the rest are Django's).
LIBPQ_OPTIONS = frozenset(
    {"sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "connect_timeout", "options"}
)

# pgBackRest's stanza status codes (`info --output=json`) that still list backup sets:
# 0 ok, 2 no valid backups. Others (missing stanza path or data, ...) name a broken stanza.
INFO_OK_CODES = (0, 2)


class PgBackRestError(Exception):
    """pgBackRest, or the PostgreSQL server of a drill, failed: the message is one line (the
    tool's last error line); `stderr` keeps everything the tool said."""

    def __init__(self, message: str, *, returncode: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True)
class BackupSet:
    """One backup set of the stanza, as `pgbackrest info` lists it."""

    label: str  # e.g. 20250101-010000F, 20250102-010000F_20250102-020000I
    type: str  # full, diff or incr
    start: datetime  # aware, UTC
    stop: datetime  # the set is consistent as of its stop (the recovery point it offers)
    size: int  # bytes of the database the set restores
    repo_size: int  # bytes the set takes in the repository (compressed)
    wal_start: str  # the first and last WAL segments needed to make it consistent
    wal_stop: str
    lsn_start: str = ""
    lsn_stop: str = ""
    prior: str = ""  # the set a diff or incr builds on
    pg_version: str = ""
    repo: int = 1
    error: bool = False  # pgBackRest found page checksum errors while backing up


@dataclass(frozen=True)
class VerifyReport:
    """What `pgbackrest verify` found: `detail` is "ok" or the problems, on one line."""

    ok: bool
    detail: str
    output: str = ""  # verify's text report as printed


@dataclass(kw_only=True)
class PhysicalSnapshot(Snapshot):
    """A pgBackRest backup: `taken_at` is the set's stop time (a physical backup is consistent
    as of its stop point). `schema_version`, `row_counts` and `audit_head` are read from the
    live database just before the backup starts (at `counted_at`), so rows written while the
    backup runs are in the set but not in the counts (a restored set can differ from them by
    those). To compare a drill with the counts exactly, back up while nothing writes."""

    backup_set: BackupSet
    counted_at: datetime | None = None  # None when no source database was given


@dataclass(frozen=True, kw_only=True)
class RestoredTarget(DatabaseTarget):
    """The database of a drill's temporary server, and how long it took to get there."""

    restore_seconds: float  # from the start of `pgbackrest restore` to recovery finished
    label: str  # the backup set restored
    target_time: datetime | None = None


@dataclass(frozen=True)
class ServerUser:
    """The operating-system user that owns the data and runs pgBackRest and the server."""

    name: str
    uid: int
    gid: int
    home: str

    @classmethod
    def named(cls, name: str) -> "ServerUser":
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise PgBackRestError(
                f"no operating-system user {name!r} to run PostgreSQL as"
            ) from None
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def server_user(name: str | None = None) -> ServerUser | None:
    """Whom to run pgBackRest and the server as: `name`, else `postgres` when we are root;
    None means as ourselves (no switch)."""
    if name is None:
        if os.geteuid() != 0:
            return None
        name = "postgres"
    user = ServerUser.named(name)
    return None if user.uid == os.geteuid() else user


def run_as(
    args: Sequence[str],
    *,
    user: ServerUser | None = None,
    cwd: Path | str = "/",
    timeout: float | None = None,
) -> "subprocess.CompletedProcess[str]":
    """Run one command (an argument list) as `user`, capturing its output; never raises for a
    non-zero exit status (the caller reads it), only when the command cannot run at all."""
    # Only what the tools need: the application's secrets stay out of the server's processes
    # (PGBACKREST_* is pgBackRest's own configuration, e.g. a repository's cipher pass).
    env = child_environment("PGBACKREST_")
    switch: dict[str, Any] = {}
    if user is not None:
        env.update(HOME=user.home, USER=user.name, LOGNAME=user.name)
        switch = {"user": user.uid, "group": user.gid, "extra_groups": []}
    try:
        return subprocess.run(  # noqa: S603 - an argument list, no shell
            list(args),
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **switch,
        )
    except FileNotFoundError:
        raise PgBackRestError(f"{args[0]}: command not found") from None
    except subprocess.TimeoutExpired:
        raise PgBackRestError(f"{Path(args[0]).name} did not finish within {timeout:g}s") from None


def error_line(stderr: str, stdout: str = "") -> str:
    """The tool's last error as one line: pgBackRest's last `ERROR:` with its indented
    continuation lines (HINT: ...), else the last non-empty line of stderr (or stdout)."""
    lines = [line.rstrip() for line in (stderr.strip() or stdout).splitlines() if line.strip()]
    for i in range(len(lines) - 1, -1, -1):
        if "ERROR:" in lines[i]:
            message = lines[i][lines[i].index("ERROR:") :]
            rest = [line.strip() for line in lines[i + 1 :] if line[:1].isspace()]
            return " ".join([message, *rest])
    return lines[-1].strip() if lines else ""


def postgres_bindir(major: str | None = None) -> Path:
    """PostgreSQL's server binaries: /usr/lib/postgresql/<major>/bin when `major` is given and
    installed, else `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin, else the
    directory of `pg_ctl` on PATH (the order of scripts/with-postgres.sh)."""

    def has_server(path: Path) -> bool:
        return all((path / tool).is_file() for tool in ("pg_ctl", "postgres", "pg_isready"))

    candidates: list[Path] = []
    if major:
        candidates.append(Path("/usr/lib/postgresql") / major / "bin")
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = run_as([pg_config, "--bindir"], cwd="/")
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    candidates.extend(reversed(installed))
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        candidates.append(Path(pg_ctl).parent)
    for path in candidates:
        if has_server(path) and (not major or _server_major(path) == major):
            return path
    wanted = f"PostgreSQL {major}" if major else "PostgreSQL"
    raise PgBackRestError(
        f"no {wanted} server binaries (pg_ctl, postgres) found: install them "
        f"(Debian/Ubuntu: apt-get install postgresql-{major or 'NN'}) or pass pg_bindir"
    )


def _server_major(bindir: Path) -> str:
    result = run_as([str(bindir / "postgres"), "--version"], cwd="/")
    found = re.search(r"(\d+)(?:\.\d+)?", result.stdout)
    return found.group(1) if found else ""


def make_work_dir(
    user: ServerUser | None, parent: str | Path | None = None, *, prefix: str
) -> Path:
    """A new 0700 directory that `user` owns, under `parent` (default the temporary directory,
    or /tmp when that is out of the user's reach, e.g. TMPDIR under /root)."""
    if user is None:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    for base in [parent] if parent else [tempfile.gettempdir(), "/tmp"]:  # noqa: S108
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
        os.chown(path, user.uid, user.gid)
        if run_as(["/usr/bin/test", "-w", str(path)], user=user).returncode == 0:
            return path
        path.rmdir()
    raise PgBackRestError(f"user {user.name} cannot write to {parent or tempfile.gettempdir()}")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (a server started on it may still lose the race)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def inspect(target: DatabaseTarget, key_tables: Sequence[str]) -> Snapshot:
    """What a PostgreSQL database holds now, read in one snapshot: the newest applied
    migration of each app, the row counts of `key_tables` (those that exist), the audit
    chain's newest event. `taken_at` is the server's clock when the snapshot was taken."""
    params = {key: value for key, value in target.options.items() if key in LIBPQ_OPTIONS and value}
    with psycopg.connect(
        host=target.host or None,
        port=target.port or None,
        dbname=target.name,
        user=target.user or None,
        password=target.password or None,
        **params,
    ) as conn:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction(), conn.cursor() as cur:
            # The first statement takes the snapshot every later one reads.
            cur.execute("SELECT clock_timestamp()")
            taken_at = _one(cur.fetchone())
            names = [*key_tables, "django_migrations", AUDIT_TABLE]
            cur.execute(
                "SELECT name FROM unnest(%s::text[]) name WHERE to_regclass(name) IS NOT NULL",
                [names],
            )
            present = {row[0] for row in cur.fetchall()}
            counts: dict[str, int] = {}
            for table in key_tables:
                if table in present:
                    ident = sql.Identifier(*table.split("."))
                    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(ident))
                    counts[table] = int(_one(cur.fetchone()))
            schema: dict[str, str] = {}
            if "django_migrations" in present:
                # The most recently applied migration of each app.
                cur.execute(
                    "SELECT DISTINCT ON (app) app, name FROM django_migrations"
                    " ORDER BY app, id DESC"
                )
                schema = {app: name for app, name in cur.fetchall()}
            head: dict[str, Any] = {}
            if AUDIT_TABLE in present:
                query = sql.SQL("SELECT id, hash FROM {} ORDER BY id DESC LIMIT 1")
                cur.execute(query.format(sql.Identifier(AUDIT_TABLE)))
                row = cur.fetchone()
                if row is not None:
                    head = {"id": row[0], "hash": row[1]}
    return Snapshot(
        taken_at=taken_at,
        schema_version=schema,
        row_counts=counts,
        audit_head=head,
        database=target.name,
    )


def _one(row: tuple[Any, ...] | None) -> Any:
    if row is None:
        raise PgBackRestError("the database returned no row")
    return row[0]


class LocalServer:
    """A PostgreSQL server on a data directory of ours: 127.0.0.1 on a free port, and a private
    socket directory; run as `user` (the data's owner). Used by drills and by the tests."""

    def __init__(
        self,
        data_dir: Path,
        *,
        bindir: Path,
        user: ServerUser | None,
        socket_dir: Path,
        log_file: Path,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.bindir = bindir
        self.user = user
        self.socket_dir = socket_dir
        self.log_file = log_file
        self.settings = dict(settings or {})
        self.port = 0
        self.started = False

    def _pg(
        self, tool: str, *args: str, timeout: float | None = None
    ) -> "subprocess.CompletedProcess[str]":
        # From inside the data's parent, so the server user never needs our working directory.
        return run_as(
            [str(self.bindir / tool), *args],
            user=self.user,
            cwd=self.data_dir.parent,
            timeout=timeout,
        )

    def start(self, timeout: float = 120.0) -> None:
        """Start it, retrying on another port when the chosen one was taken meanwhile."""
        for _attempt in range(3):
            self.port = free_port()
            settings = {
                "listen_addresses": "127.0.0.1",
                "port": str(self.port),
                "unix_socket_directories": str(self.socket_dir),
                **self.settings,
            }
            # pg_ctl hands -o to a shell, so each option is quoted.
            options = shlex.join(arg for k, v in settings.items() for arg in ("-c", f"{k}={v}"))
            wait = ("-w", "-t", str(int(timeout)))
            files = ("-D", str(self.data_dir), "-l", str(self.log_file))
            result = self._pg("pg_ctl", *files, "-o", options, *wait, "start", timeout=timeout + 30)
            if result.returncode == 0:
                self.started = True
                return
            self.stop()
            log = self.log_tail()
            if not re.search(
                r"could not bind|address already in use|could not create any TCP", log, re.I
            ):
                break
        why = self.last_log_error() or error_line(result.stderr, result.stdout)
        raise PgBackRestError(f"PostgreSQL did not start on {self.data_dir}: {why}")

    def stop(self) -> None:
        """Stop it at once (the data is thrown away); kill the postmaster if pg_ctl cannot."""
        pid = self.postmaster_pid()
        if pid is None:
            self.started = False
            return
        immediately = ("-m", "immediate", "-w", "-t", "60")
        stopped = self._pg("pg_ctl", "-D", str(self.data_dir), *immediately, "stop", timeout=90)
        if stopped.returncode != 0 and self.alive():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.started = False

    def postmaster_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        except OSError:
            return None
        return int(first) if first.strip().isdigit() else None

    def alive(self) -> bool:
        pid = self.postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # someone else's process: the pid file is still there, so it runs
        return True

    def accepting(self) -> bool:
        """pg_isready: accepting connections (not starting up, not in recovery without
        hot standby)."""
        where = ("-h", str(self.socket_dir), "-p", str(self.port))
        return self._pg("pg_isready", "-q", *where, timeout=30).returncode == 0

    def log_tail(self, lines: int = 20) -> str:
        try:
            with self.log_file.open(errors="replace") as log:
                return "".join(deque(log, maxlen=lines))
        except OSError:
            return ""

    def last_log_error(self) -> str:
        """The server log's last FATAL/PANIC/ERROR line, without its timestamp prefix."""
        for line in reversed(self.log_tail(200).splitlines()):
            found = re.search(r"\b(FATAL|PANIC|ERROR):\s+(.*)", line)
            if found:
                return f"{found.group(1)}: {found.group(2)}"
        return ""


class PgBackRest:
    """Drive one pgBackRest stanza. `config_path` is passed as --config (else pgBackRest's
    default configuration), `repo_path` as --repo1-path (overrides the configuration); `bin`
    is the pgbackrest executable. `os_user` runs the commands and drill servers (default:
    `postgres` when root, else ourselves); `pg_bindir` the server binaries of drills (default:
    those of the restored cluster's major version); `timeout` bounds each pgbackrest command
    in seconds (None: no bound, since a backup of a large database takes hours)."""

    name = "pgbackrest"  # the Backup.Engine value

    def __init__(
        self,
        stanza: str,
        config_path: str | Path | None = None,
        repo_path: str | Path | None = None,
        bin: str = "pgbackrest",
        *,
        os_user: str | None = None,
        pg_bindir: str | Path | None = None,
        timeout: float | None = None,
    ) -> None:
        if not stanza or stanza.startswith("-"):
            raise ValueError(f"not a stanza name: {stanza!r}")
        self.stanza = stanza
        self.config_path = Path(config_path) if config_path else None
        self.repo_path = Path(repo_path) if repo_path else None
        self.bin = bin
        self.os_user = os_user
        self.pg_bindir = Path(pg_bindir) if pg_bindir else None
        self.timeout = timeout

    # --- commands ---------------------------------------------------------------------

    def command(self, name: str, *args: str, console: str = "warn") -> list[str]:
        """The argument list of `pgbackrest <name>` on this stanza. Console logging is set
        here (`console`) so that captured output stays small whatever the configuration
        says; warnings and errors go to stderr, where failures are read from."""
        executable = shutil.which(self.bin)
        if executable is None:
            raise PgBackRestError(
                f"{self.bin}: command not found (install pgBackRest: apt-get install pgbackrest)"
            )
        base = [executable, f"--stanza={self.stanza}"]
        if self.config_path is not None:
            base.append(f"--config={self.config_path}")
        if self.repo_path is not None:
            base.append(f"--repo1-path={self.repo_path}")
        base += [f"--log-level-console={console}", "--log-level-stderr=warn"]
        return [*base, name, *args]

    def run(
        self, name: str, *args: str, console: str = "warn"
    ) -> "subprocess.CompletedProcess[str]":
        """Run `pgbackrest <name> <args>`; raise PgBackRestError with its last error line when
        it fails."""
        result = run_as(
            self.command(name, *args, console=console),
            user=server_user(self.os_user),
            timeout=self.timeout,
        )
        if result.returncode != 0:
            line = error_line(result.stderr, result.stdout) or f"exit status {result.returncode}"
            raise PgBackRestError(
                f"pgbackrest {name} (stanza {self.stanza}) failed: {line}",
                returncode=result.returncode,
                stderr=result.stderr,
            )
        return result

    def stanza_create(self) -> None:
        """`pgbackrest stanza-create`: initialise the stanza in the repository (idempotent)."""
        self.run("stanza-create")

    def check(self) -> None:
        """`pgbackrest check`: the configuration is right and WAL reaches the repository."""
        self.run("check")

    # --- reading and proving ------------------------------------------------------------

    def info(self) -> list[BackupSet]:
        """The stanza's backup sets, oldest first (`pgbackrest info --output=json`). Raises
        PgBackRestError when the stanza cannot be read (missing, not created, ...)."""
        result = self.run("info", "--output=json", console="off")
        try:
            stanzas = json.loads(result.stdout)
        except ValueError:
            raise PgBackRestError(
                f"pgbackrest info (stanza {self.stanza}) printed no JSON: {result.stdout[:200]!r}"
            ) from None
        entry = next((s for s in stanzas if s.get("name") == self.stanza), None)
        if entry is None:
            raise PgBackRestError(f"pgbackrest info does not list stanza {self.stanza}")
        status = entry.get("status") or {}
        backups = entry.get("backup") or []
        if status.get("code") not in INFO_OK_CODES and not backups:
            raise PgBackRestError(
                f"pgbackrest stanza {self.stanza}: {status.get('message') or 'unreadable'}"
            )
        versions = {
            (db.get("id"), db.get("repo-key")): str(db.get("version", ""))
            for db in entry.get("db") or []
        }
        sets = [self._backup_set(item, versions) for item in backups]
        return sorted(sets, key=lambda s: (s.start, s.label))

    @staticmethod
    def _backup_set(item: Mapping[str, Any], versions: Mapping[tuple[Any, Any], str]) -> BackupSet:
        info = item.get("info") or {}
        archive = item.get("archive") or {}
        lsn = item.get("lsn") or {}
        stamp = item.get("timestamp") or {}
        database = item.get("database") or {}
        return BackupSet(
            label=str(item["label"]),
            type=str(item.get("type", "")),
            start=datetime.fromtimestamp(int(stamp["start"]), tz=UTC),
            stop=datetime.fromtimestamp(int(stamp["stop"]), tz=UTC),
            size=int(info.get("size") or 0),
            repo_size=int((info.get("repository") or {}).get("size") or 0),
            wal_start=str(archive.get("start") or ""),
            wal_stop=str(archive.get("stop") or ""),
            lsn_start=str(lsn.get("start") or ""),
            lsn_stop=str(lsn.get("stop") or ""),
            prior=str(item.get("prior") or ""),
            pg_version=versions.get((database.get("id"), database.get("repo-key")), ""),
            repo=int(database.get("repo-key") or 1),
            error=bool(item.get("error")),
        )

    def verify(self) -> VerifyReport:
        """`pgbackrest verify`: re-read every backup file and archived WAL segment of the
        stanza against its checksum. pgBackRest 2.45 exits 0 even when it finds invalid files,
        so the report is read from its text output (--verbose, since without it an intact
        repository prints nothing): "status: ok" for every stanza. A verify that cannot run
        (missing stanza, unreachable repository) is a failed one too."""
        try:
            result = self.run("verify", "--output=text", "--verbose")
        except PgBackRestError as exc:
            return VerifyReport(ok=False, detail=str(exc), output=exc.stderr)
        output = result.stdout
        statuses = re.findall(r"^status:\s*(\S+)", output, re.M)
        if statuses and all(status == "ok" for status in statuses):
            return VerifyReport(ok=True, detail="ok", output=output)
        if not statuses:
            return VerifyReport(
                ok=False,
                detail=f"pgbackrest verify printed no status: {output.strip()[:200]!r}",
                output=output,
            )
        # The problems are the lines after a non-ok status (which files, how many).
        problems: list[str] = []
        failing = False
        for line in output.splitlines():
            if line.startswith("status:"):
                failing = not line.endswith(" ok")
            elif failing and line.strip() and not line.startswith("stanza:"):
                problems.append(line.strip())
        detail = "; ".join(problems) or "status: error"
        return VerifyReport(
            ok=False, detail=f"pgbackrest verify found errors: {detail}", output=output
        )

    # --- backing up -----------------------------------------------------------------------

    def backup(
        self,
        type: str = "full",
        *,
        source: DatabaseTarget | None = None,
        key_tables: Sequence[str] = (),
    ) -> PhysicalSnapshot:
        """`pgbackrest backup --type=<type>`, and the new set as `info` lists it. With `source`
        (the database the stanza's cluster serves), what it holds is read first: see
        PhysicalSnapshot for what that reading is as of. pgBackRest makes a diff or incr a
        full one when the stanza has no full set yet; the set's `type` says what was made."""
        if type not in BACKUP_TYPES:
            raise ValueError(f"backup type must be one of {', '.join(BACKUP_TYPES)}, not {type!r}")
        before = {s.label for s in self.info()}
        counted = inspect(source, key_tables) if source is not None else None
        self.run("backup", f"--type={type}")
        # pgBackRest lets one backup run per stanza at a time, so the new label is ours.
        new = [s for s in self.info() if s.label not in before]
        if not new:
            raise PgBackRestError(
                f"pgbackrest backup (stanza {self.stanza}) finished but info lists no new set"
            )
        made = max(new, key=lambda s: (s.stop, s.label))
        return PhysicalSnapshot(
            taken_at=made.stop,
            schema_version=counted.schema_version if counted else {},
            row_counts=counted.row_counts if counted else {},
            audit_head=counted.audit_head if counted else {},
            database=source.name if source is not None else "",
            label=made.label,
            backup_set=made,
            counted_at=counted.taken_at if counted else None,
        )

    # --- restore drills -------------------------------------------------------------------

    @contextmanager
    def restore_drill(
        self,
        label: str | None = None,
        target_time: datetime | None = None,
        *,
        database: str = "postgres",
        user: str = "postgres",
        work_dir: str | Path | None = None,
        timeout: float = 3600.0,
    ) -> Iterator[RestoredTarget]:
        """Restore a set into a temporary data directory, start a temporary server on it and
        yield its `database`; on exit stop the server and remove the directory.

        Without `target_time` the set `label` (default the newest) is restored as of its stop
        point (`--type=immediate`). With `target_time` (aware) the cluster is recovered to
        that moment from the archived WAL (`--type=time`; the set is `label`, or the one
        pgBackRest picks for the time), and the server is promoted there. The drill's server
        never archives (archive_mode=off: its WAL must not reach the stanza), listens on
        127.0.0.1 and a private socket, and ignores the restored pg_hba.conf: over TCP it
        takes `user` with a random password set for the drill (in the yielded target).
        `work_dir` is where the copy goes (default the temporary directory): it needs room
        for the whole database. `timeout` bounds starting up and recovering, in seconds.
        """
        if target_time is not None and target_time.tzinfo is None:
            raise ValueError("target_time must be an aware datetime")
        os_user = server_user(self.os_user)
        started = time.monotonic()
        root = make_work_dir(os_user, work_dir, prefix="ledgerguard-pgbackrest-drill.")
        sockets: Path | None = None
        server: LocalServer | None = None
        try:
            # The socket apart, in a short path: a Unix socket's path has at most 107 bytes.
            sockets = make_work_dir(os_user, prefix="lg-drill-socket.")
            data = root / "data"
            args = [
                f"--pg1-path={data}",
                f"--tablespace-map-all={root / 'tablespaces'}",
                "--target-action=promote",
            ]
            if label:
                args.append(f"--set={label}")
            if target_time is not None:
                stamp = target_time.astimezone(UTC).isoformat(sep=" ")
                args += ["--type=time", f"--target={stamp}"]
            else:
                args.append("--type=immediate")
            result = self.run("restore", *args, console="info")
            found = re.search(r"restore backup set (\S+?),", result.stdout)
            restored = label or (found.group(1) if found else "")
            server = self._drill_server(root, sockets, os_user)
            server.start(timeout=min(timeout, 300.0))
            password = secrets.token_urlsafe(24)
            self._await_recovery(
                server, database=database, user=user, password=password, timeout=timeout
            )
            yield RestoredTarget(
                vendor="postgresql",
                name=database,
                host="127.0.0.1",
                port=str(server.port),
                user=user,
                password=password,
                restore_seconds=time.monotonic() - started,
                label=restored,
                target_time=target_time,
            )
        finally:
            if server is not None:
                server.stop()
            shutil.rmtree(root, ignore_errors=True)
            if sockets is not None:
                shutil.rmtree(sockets, ignore_errors=True)

    def _drill_server(self, root: Path, socket_dir: Path, user: ServerUser | None) -> LocalServer:
        data = root / "data"
        try:
            major = (data / "PG_VERSION").read_text().strip()
        except OSError:
            raise PgBackRestError(f"pgbackrest restore left no PG_VERSION in {data}") from None
        bindir = self.pg_bindir or postgres_bindir(major)
        # Access for the drill only: the socket (in a 0700 directory) without a password, TCP
        # on 127.0.0.1 with the drill's password. The restored files are production's.
        (root / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )
        (root / "pg_ident.conf").write_text("")
        if not (data / "postgresql.conf").exists():
            (data / "postgresql.conf").write_text("")  # Debian keeps it in /etc/postgresql
        if user is not None:
            for path in (
                root / "pg_hba.conf",
                root / "pg_ident.conf",
                data / "postgresql.conf",
            ):
                os.chown(path, user.uid, user.gid)
        # Command-line settings win over the restored postgresql.conf: nothing of the drill
        # may reach production's files, ports or repository.
        settings = {
            "data_directory": str(data),
            "hba_file": str(root / "pg_hba.conf"),
            "ident_file": str(root / "pg_ident.conf"),
            "external_pid_file": "",
            "archive_mode": "off",
            "hot_standby": "off",
            "logging_collector": "off",
            "ssl": "off",
            "password_encryption": "scram-sha-256",
            "log_statement": "none",
        }
        return LocalServer(
            data,
            bindir=bindir,
            user=user,
            socket_dir=socket_dir,
            log_file=root / "postgres.log",
            settings=settings,
        )

    @staticmethod
    def _await_recovery(
        server: LocalServer, *, database: str, user: str, password: str, timeout: float
    ) -> None:
        """Wait until the server accepts connections and has left recovery, then give `user`
        the drill's password. With hot_standby off it accepts none before recovery ends."""
        deadline = time.monotonic() + timeout
        pause = 0.1
        while True:
            if not server.alive():
                # The log goes with the drill's directory: the error keeps its end.
                why = server.last_log_error() or "no error in its log"
                raise PgBackRestError(
                    f"the restored server stopped during recovery: {why}",
                    stderr=server.log_tail(),
                )
            if server.accepting():
                try:
                    with psycopg.connect(
                        host=str(server.socket_dir),
                        port=server.port,
                        dbname=database,
                        user=user,
                        autocommit=True,
                    ) as conn:
                        if not _one(conn.execute("SELECT pg_is_in_recovery()").fetchone()):
                            query = sql.SQL("ALTER ROLE {} PASSWORD {}")
                            conn.execute(query.format(sql.Identifier(user), sql.Literal(password)))
                            return
                except psycopg.OperationalError as exc:
                    detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
                    raise PgBackRestError(
                        f"cannot connect to the restored {database!r} as {user!r}: {detail}"
                    ) from None
            if time.monotonic() > deadline:
                raise PgBackRestError(
                    f"the restored server did not finish recovery within {timeout:g}s"
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 2.0)
