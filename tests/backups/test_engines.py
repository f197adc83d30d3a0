"""The backup engines on a real database: the one the suite runs on (SQLite file or PostgreSQL),
through the engine that serves it. A dump taken while postings commit holds exactly what it
recorded; archives are read back and damage is found; restores into scratch databases hold what
the dump recorded; scratch databases go away; pg_dump never sees a password on its command line.
"""

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from backups.engines import (
    KEY_TABLES,
    EngineError,
    PgDumpEngine,
    SqliteEngine,
    engine_for,
    engine_named,
    target_for,
)
from backups.engines.base import DatabaseTarget
from backups.engines.pgdump import connect_kwargs, find_tool, tool_environment
from backups.engines.sqlite import is_memory
from config.db.features import guard_dialect
from finance.models import JournalEntry
from tests.receivers import free_port

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"
POSTED = ("posted", "reversed")


@pytest.fixture
def engine_live():
    """The engine for the suite's database and where that database is (a file on SQLite)."""
    target = target_for("default")
    if target.vendor == "sqlite" and is_memory(target.name):
        pytest.skip(
            f"the SQLite test database is in memory ({target.name!r}): the engine copies files "
            "(run with DATABASE_URL=sqlite:///var/ledgerguard-test.sqlite3, as make test does)"
        )
    return engine_for(connection), target


@pytest.fixture
def engine_poster(ledger, post):
    """post_one(i): posts a balanced two-line entry through finance.services (maker-checker)."""

    def post_one(i: int) -> None:
        post(ledger.expense, ledger.overdraft, f"{1 + i % 97}.{i % 100:02d}", description=f"p{i}")

    return post_one


def engine_rows(target: DatabaseTarget, query: str) -> list[tuple]:
    """Rows of `query` read straight from `target` (a restored copy), not through Django."""
    if target.vendor == "sqlite":
        with closing(sqlite3.connect(target.name)) as conn:
            return conn.execute(query).fetchall()
    with psycopg.connect(**connect_kwargs(target)) as conn:
        return conn.execute(query).fetchall()


def engine_figures(snapshot) -> tuple:
    return snapshot.schema_version, snapshot.row_counts, snapshot.audit_head


def engine_scratch_exists(target: DatabaseTarget) -> bool:
    if target.vendor == "sqlite":
        return Path(target.name).exists() or Path(target.name).parent.exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [target.name])
        return cursor.fetchone()[0] > 0


def engine_manage(target: DatabaseTarget, *args: str) -> subprocess.CompletedProcess:
    """`manage.py ARGS` in a child process whose database is `target` (the project's backend),
    with this test's own BACKUP_DIR (audit checkpoints are read from there)."""
    env = {**os.environ, "DATABASE_URL": target.url(), "BACKUP_DIR": str(settings.BACKUP_DIR)}
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def engine_flip_byte(path: Path, offset: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


# --- the dump is one snapshot ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_dump_while_posting_records_exactly_what_the_copy_holds(
    engine_live, engine_poster, tmp_path
):
    engine, target = engine_live
    stop = threading.Event()
    posted = [0, 0]
    errors: list[BaseException] = []

    def poster(n: int) -> None:
        try:
            i = n
            while not stop.is_set():
                engine_poster(i)
                posted[n] += 1
                i += 2
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
            stop.set()
        finally:
            connection.close()

    def wait_for(total: int) -> None:
        deadline = time.monotonic() + 120
        while sum(posted) < total and not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)

    threads = [threading.Thread(target=poster, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    try:
        wait_for(6)
        before = JournalEntry.objects.count()
        archive = tmp_path / f"archive{engine.suffix}"
        snapshot = engine.dump(target, archive, KEY_TABLES)
        after = JournalEntry.objects.count()
        wait_for(sum(posted) + 6)  # the writers went on after the copy
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    assert not errors, errors[:3]
    final = JournalEntry.objects.count()

    entries = snapshot.row_counts["finance_journalentry"]
    assert before <= entries <= after < final
    assert set(snapshot.row_counts) == set(KEY_TABLES)
    assert snapshot.audit_head["id"] > 0 and len(snapshot.audit_head["hash"]) == 64
    assert snapshot.schema_version["finance"] == max(
        name
        for app, name in engine_rows(target, "SELECT app, name FROM django_migrations")
        if app == "finance"
    )

    with engine.scratch(target) as scratch:
        engine.restore(archive, scratch)
        restored = engine.inspect(scratch, KEY_TABLES)
        assert engine_figures(restored) == engine_figures(snapshot)

        # Every entry in the copy is whole: both its lines there, and balanced.
        by_entry: dict[int, list[tuple[str, Decimal]]] = defaultdict(list)
        for entry_id, side, amount in engine_rows(
            scratch,
            "SELECT e.id, l.side, l.amount FROM finance_journalentry e "
            "LEFT JOIN finance_journalline l ON l.entry_id = e.id",
        ):
            by_entry[entry_id] += [(side, Decimal(str(amount)))] if side else []
        assert len(by_entry) == entries
        for entry_id, lines in by_entry.items():
            debit = sum(amount for side, amount in lines if side == "D")
            credit = sum(amount for side, amount in lines if side == "C")
            assert len(lines) == 2 and debit == credit > 0, (entry_id, lines)

        # The balances agree with the posted lines: the copy holds no half-applied posting.
        posted_sums: dict[int, Decimal] = defaultdict(Decimal)
        for account_id, side, amount in engine_rows(
            scratch,
            "SELECT l.account_id, l.side, l.amount FROM finance_journalline l "
            "JOIN finance_journalentry e ON e.id = l.entry_id "
            f"WHERE e.status IN {POSTED}",
        ):
            posted_sums[account_id] += Decimal(str(amount)) * (1 if side == "D" else -1)
        for account_id, debits, credits in engine_rows(
            scratch, "SELECT account_id, debit_total, credit_total FROM finance_accountbalance"
        ):
            balance = Decimal(str(debits)) - Decimal(str(credits))
            assert balance == posted_sums[account_id], account_id
        assert any(posted_sums.values())

        # The project's own backend opens the restored copy (with the functions its triggers
        # call) and the copy's audit chain verifies.
        done = engine_manage(scratch, "verify_audit_chain", "--json")
        assert done.returncode == 0, done.stderr[-2000:] or done.stdout[-2000:]
        assert '"status": "ok"' in done.stdout
    assert not engine_scratch_exists(scratch)


# --- reading archives back --------------------------------------------------------------------


@pytest.fixture
def engine_archive(engine_live, engine_poster, tmp_path):
    """A dump of the suite's database holding a few committed postings (transactional tests)."""
    engine, target = engine_live
    for i in range(5):
        engine_poster(i)
    archive = tmp_path / f"archive{engine.suffix}"
    snapshot = engine.dump(target, archive, KEY_TABLES)
    return archive, snapshot


def engine_data_offset(engine, archive: Path) -> int:
    """A byte in the middle of the archive where the ledger's rows are, which the archive's own
    structure covers (a byte of a text value SQLite cannot tell from another; PostgreSQL's
    table of contents is SQL text; only the SHA-256 the services keep catches those):

    SQLite: the first byte of finance_journalline's root page (its b-tree page type). Not
    "the middle page": in a database that has deleted rows that may be a free page, whose
    bytes no integrity check reads (CI met one).
    pg_dump: the middle of the compressed data of finance_journalline (zlib checks it).
    """
    data = archive.read_bytes()
    if engine.suffix == ".sqlite3":
        page_size = int.from_bytes(data[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        uri = f"file:{archive}?mode=ro&immutable=1"
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            (root,) = conn.execute(
                "SELECT rootpage FROM sqlite_master WHERE name = 'finance_journalline'"
            ).fetchone()
        return (root - 1) * page_size
    listing = subprocess.run(
        [find_tool("pg_restore"), "--list", str(archive)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [x for x in listing.splitlines() if " TABLE DATA public finance_journalline " in x]
    dump_id = int(line.split(";")[0])
    int_size = data[8]  # the custom format's header: PGDMP, 3 version bytes, int size
    # A data block: BLK_DATA (1), the entry's id (a sign byte, then little-endian), then chunks
    # of (length, zlib bytes). Blocks follow the table of contents, so the last match is it.
    start = data.rfind(b"\x01\x00" + dump_id.to_bytes(int_size, "little"))
    assert start > 0
    length_at = start + 2 + int_size + 1
    length = int.from_bytes(data[length_at : length_at + int_size], "little")
    assert 0 < length < len(data)
    return length_at + int_size + length // 2


@pytest.mark.django_db(transaction=True)
def test_check_archive_passes_a_good_archive_and_fails_a_damaged_one(
    engine_live, engine_archive, tmp_path
):
    engine, _target = engine_live
    archive, _snapshot = engine_archive
    before = archive.read_bytes()

    good = engine.check_archive(archive)
    assert good.ok, good.detail
    assert good.detail == "ok" and good.entries > 0
    assert archive.read_bytes() == before  # read, never written (SQLite: checked on a copy)
    assert sorted(p.name for p in archive.parent.iterdir()) == [archive.name]

    flipped = tmp_path / f"flipped{engine.suffix}"
    shutil.copyfile(archive, flipped)
    engine_flip_byte(flipped, engine_data_offset(engine, archive))
    bad = engine.check_archive(flipped)
    assert not bad.ok
    assert bad.detail and bad.detail != "ok" and "\n" not in bad.detail

    truncated = tmp_path / f"truncated{engine.suffix}"
    shutil.copyfile(archive, truncated)
    os.truncate(truncated, archive.stat().st_size // 2)
    short = engine.check_archive(truncated)
    assert not short.ok
    assert short.detail and "\n" not in short.detail


@pytest.mark.parametrize("content", [b"", b"not a backup at all\n" * 100])
def test_check_archive_fails_what_is_not_an_archive(engine_live, tmp_path, content):
    engine, _target = engine_live
    archive = tmp_path / f"junk{engine.suffix}"
    archive.write_bytes(content)
    report = engine.check_archive(archive)
    assert not report.ok
    assert report.detail and "\n" not in report.detail
    assert not engine.check_archive(tmp_path / "missing").ok


# --- restoring into scratch databases -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_restore_into_a_scratch_holds_what_the_dump_recorded(engine_live, engine_archive):
    engine, target = engine_live
    archive, snapshot = engine_archive
    assert snapshot.row_counts["finance_journalentry"] == 5
    assert snapshot.row_counts["finance_journalline"] == 10
    assert snapshot.database == target.name

    with engine.scratch(target) as scratch:
        assert scratch.vendor == target.vendor and scratch.name != target.name
        assert engine.is_empty(scratch)
        engine.restore(archive, scratch)
        assert not engine.is_empty(scratch)
        restored = engine.inspect(scratch, KEY_TABLES)
        assert engine_figures(restored) == engine_figures(snapshot)
        assert restored.taken_at >= snapshot.taken_at

        # A restore over a non-empty database is the caller's to allow; clear() empties it
        # and leaves a database the next restore can use.
        engine.clear(scratch)
        assert engine.is_empty(scratch)
        engine.restore(archive, scratch)
        assert engine_figures(engine.inspect(scratch, KEY_TABLES)) == engine_figures(snapshot)
    assert not engine_scratch_exists(scratch)


@pytest.mark.django_db(transaction=True)
def test_a_damaged_archive_restores_nothing(engine_live, engine_archive, tmp_path):
    engine, target = engine_live
    archive, _snapshot = engine_archive
    truncated = tmp_path / f"truncated{engine.suffix}"
    shutil.copyfile(archive, truncated)
    # Cut inside the data: the schema (pg_dump's table of contents) still reads.
    os.truncate(truncated, engine_data_offset(engine, archive))
    with engine.scratch(target) as scratch:
        with pytest.raises(EngineError) as caught:
            engine.restore(truncated, scratch)
        assert "\n" not in str(caught.value) and str(caught.value)
        assert engine.is_empty(scratch)  # pg_restore --single-transaction; SQLite checks first
    assert not engine_scratch_exists(scratch)


@pytest.mark.django_db
def test_the_scratch_goes_away_when_the_drill_fails(engine_live):
    engine, target = engine_live
    with pytest.raises(RuntimeError, match="drill failed"), engine.scratch(target) as scratch:
        assert engine.is_empty(scratch)
        raise RuntimeError("drill failed")
    assert not engine_scratch_exists(scratch)


@pytest.mark.django_db
def test_inspect_reads_the_applied_migrations_of_the_live_database(engine_live):
    engine, target = engine_live
    latest: dict[str, str] = {}
    for migration in MigrationRecorder(connection).migration_qs.order_by("id"):
        latest[migration.app] = migration.name
    snapshot = engine.inspect(target, KEY_TABLES)
    assert snapshot.schema_version == latest
    assert set(snapshot.row_counts) == set(KEY_TABLES)
    assert snapshot.taken_at.tzinfo is not None


# --- choosing an engine, naming a database ------------------------------------------------------


@pytest.mark.django_db
def test_key_tables_are_tables_of_the_database():
    assert set(KEY_TABLES) <= set(connection.introspection.table_names())


def test_engine_for_follows_the_guard_dialect():
    assert isinstance(engine_for("sqlite"), SqliteEngine)
    assert isinstance(engine_for("postgresql"), PgDumpEngine)
    assert engine_for(connection).name == engine_named(engine_for(connection).name).name
    assert engine_named("sqlite").suffix == ".sqlite3"
    assert engine_named("pg_dump").suffix == ".dump"
    with pytest.raises(EngineError):
        engine_for("oracle")
    with pytest.raises(EngineError):
        engine_named("tape")


def test_target_for_names_the_connection_database():
    target = target_for("default")
    assert target.vendor == guard_dialect(connection)
    name = connection.settings_dict["NAME"]
    if target.vendor == "sqlite" and not is_memory(name):
        assert target.name == str(Path(name).absolute())
    else:
        assert target.name == name
        assert (target.host, target.user) == (
            connection.settings_dict["HOST"] or "",
            connection.settings_dict["USER"] or "",
        )


def test_sqlite_refuses_an_in_memory_database(tmp_path):
    memory = DatabaseTarget(vendor="sqlite", name=":memory:")
    with pytest.raises(EngineError, match="in memory"):
        SqliteEngine().dump(memory, tmp_path / "x.sqlite3", KEY_TABLES)
    with pytest.raises(EngineError, match="no such database file"):
        SqliteEngine().dump(
            DatabaseTarget(vendor="sqlite", name=str(tmp_path / "missing.sqlite3")),
            tmp_path / "x.sqlite3",
            KEY_TABLES,
        )
    assert not (tmp_path / "missing.sqlite3").exists()  # a dump never creates its source


# --- pg_dump's command line ---------------------------------------------------------------------

FAKE_PASSWORD = "fake-Secret-4b1d-never-on-argv"


def test_pg_tools_never_get_the_password_on_their_command_line(tmp_path):
    engine = PgDumpEngine()
    target = DatabaseTarget(
        vendor="postgresql",
        name="ledger",
        host="db.invalid",
        port="5432",
        user="backup",
        password=FAKE_PASSWORD,
        options={"sslmode": "require", "isolation_level": 1},
    )
    dump = engine.dump_arguments(target, tmp_path / "a.dump", "00000003-0000001B-1")
    restore = engine.restore_arguments(tmp_path / "a.dump", target)
    for argv in (dump, restore):
        assert not any(FAKE_PASSWORD in arg for arg in argv), argv
        assert "--no-password" in argv
        assert argv[argv.index("--host") + 1] == "db.invalid"
        assert argv[argv.index("--username") + 1] == "backup"
        assert argv[argv.index("--dbname") + 1] == "dbname=ledger"
    assert "--snapshot=00000003-0000001B-1" in dump and "--format=custom" in dump
    assert "--single-transaction" in restore and "--no-owner" in restore
    env = tool_environment(target)
    assert env["PGPASSWORD"] == FAKE_PASSWORD
    assert env["PGSSLMODE"] == "require"
    assert "isolation_level" not in " ".join(env)  # Django's own options are not libpq's


def test_a_failing_pg_tool_says_why_in_one_line(tmp_path):
    # Nobody listens on the port: the tools fail to connect, and say so in one line.
    target = DatabaseTarget(
        vendor="postgresql",
        name="ledger",
        host="127.0.0.1",
        port=str(free_port()),
        user="backup",
        password=FAKE_PASSWORD,
    )
    engine = PgDumpEngine()
    with pytest.raises(EngineError) as dump_failed:
        engine.dump(target, tmp_path / "a.dump", KEY_TABLES)
    with pytest.raises(EngineError) as restore_failed:
        engine.restore(tmp_path / "a.dump", target)
    for caught in (dump_failed, restore_failed):
        message = str(caught.value)
        assert message and "\n" not in message and FAKE_PASSWORD not in message
    assert str(restore_failed.value).startswith("pg_restore: error:")
    assert not (tmp_path / "a.dump").exists()


def test_a_missing_pg_tool_is_a_clear_error(tmp_path):
    with pytest.raises(EngineError, match="pg_dump not found"):
        PgDumpEngine(bin_dir=tmp_path).dump(
            DatabaseTarget(vendor="postgresql", name="ledger"), tmp_path / "a.dump", KEY_TABLES
        )
    assert Path(find_tool("pg_restore")).name == "pg_restore"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "leftover",
    [
        "CREATE FUNCTION public.leftover() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE TYPE public.mood AS ENUM ('ok')",
        "CREATE DOMAIN public.amount AS numeric(20, 2)",
        "CREATE SCHEMA reporting",
    ],
)
def test_a_postgresql_database_holding_no_table_but_other_objects_is_not_empty(
    engine_live, leftover
):
    engine, target = engine_live
    if target.vendor != "postgresql":
        pytest.skip("PostgreSQL objects")
    with engine.scratch(target) as scratch:
        assert engine.is_empty(scratch)
        with psycopg.connect(**connect_kwargs(scratch), autocommit=True) as conn:
            conn.execute(leftover)
        assert not engine.is_empty(scratch)  # a restore would collide with it
        engine.clear(scratch)
        assert engine.is_empty(scratch)
