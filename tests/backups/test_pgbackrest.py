"""pgBackRest driven against a real stanza: a throwaway PostgreSQL cluster of the test's own
(initdb in a temporary directory, WAL archived with `archive-push`), a repository in a
temporary directory, backups, verify, and restore drills to a set and to a point in time.

The cluster is set up once per module (per pytest-xdist worker) and thrown away afterwards,
servers stopped and directories removed, whatever the tests did.
"""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from backups.engines.base import DatabaseTarget
from backups.engines.pgbackrest import (
    PgBackRest,
    PgBackRestError,
    PhysicalSnapshot,
    RestoredTarget,
    run_as,
)
from tests.backups.pgbackrest_cluster import NEEDS_PGBACKREST, Cluster, throwaway_cluster

pytestmark = NEEDS_PGBACKREST

STANZA = "test"
DATABASE = "ledger"


def restored_rows(target: RestoredTarget, query: str) -> list[tuple]:
    """Over TCP with the drill's password, as any client of the drill would connect."""
    with psycopg.connect(
        host=target.host,
        port=int(target.port),
        dbname=target.name,
        user=target.user,
        password=target.password,
    ) as conn:
        return conn.execute(query).fetchall()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster(STANZA, DATABASE) as made:
        yield made


@pytest.fixture(scope="module")
def full_backup(cluster: Cluster) -> PhysicalSnapshot:
    """Three ledger rows, a migration record and an audit event, then a full backup."""
    cluster.sql("CREATE TABLE ledger_rows (id int PRIMARY KEY, memo text)")
    cluster.sql("INSERT INTO ledger_rows SELECT i, 'row ' || i FROM generate_series(1, 3) i")
    cluster.sql("CREATE TABLE django_migrations (id serial, app text, name text)")
    cluster.sql(
        "INSERT INTO django_migrations (app, name) VALUES"
        " ('finance', '0001_initial'), ('finance', '0002_more'), ('audit', '0001_initial')"
    )
    cluster.sql("CREATE TABLE audit_auditevent (id bigint PRIMARY KEY, hash text)")
    cluster.sql("INSERT INTO audit_auditevent VALUES (1, 'aa'), (2, 'bb')")
    return cluster.engine.backup(
        "full", source=cluster.source, key_tables=["ledger_rows", "no_such_table"]
    )


def test_full_backup_is_listed_by_info_with_its_label_and_size(cluster, full_backup):
    sets = {s.label: s for s in cluster.engine.info()}
    made = sets[full_backup.label]

    assert made.type == "full"
    assert full_backup.label.endswith("F")
    assert made.size > 0
    assert 0 < made.repo_size < made.size  # compressed in the repository
    assert made.start <= made.stop
    assert made.wal_start and made.wal_stop >= made.wal_start
    assert made.pg_version == (cluster.server.data_dir / "PG_VERSION").read_text().strip()
    assert full_backup.backup_set == made
    # Consistent as of its stop; counted just before it started.
    assert full_backup.taken_at == made.stop
    assert full_backup.counted_at is not None
    assert full_backup.database == DATABASE
    assert full_backup.row_counts == {"ledger_rows": 3}
    assert full_backup.schema_version == {"finance": "0002_more", "audit": "0001_initial"}
    assert full_backup.audit_head == {"id": 2, "hash": "bb"}


def test_incremental_backup_builds_on_the_full_one(cluster, full_backup):
    incr = cluster.engine.backup("incr")

    assert incr.backup_set.type == "incr"
    assert incr.backup_set.prior == full_backup.label
    assert incr.row_counts == {} and incr.counted_at is None  # no source database given
    assert [s.label for s in cluster.engine.info()][-1] == incr.label


def test_backup_rejects_an_unknown_type(cluster):
    with pytest.raises(ValueError, match="full, diff, incr"):
        cluster.engine.backup("snapshot")


def test_verify_passes_on_an_intact_repository(cluster, full_backup):
    report = cluster.engine.verify()

    assert report.ok, report.detail
    assert report.detail == "ok"
    assert f"backup: {full_backup.label}, status: valid" in report.output


def test_verify_reports_a_corrupted_backup_file(cluster, full_backup):
    # A copy of the repository, so the other tests keep an intact one.
    copy = cluster.root / "repo-corrupted"
    copied = run_as(["cp", "-a", str(cluster.repo), str(copy)], user=cluster.user, cwd=cluster.root)
    assert copied.returncode == 0, copied.stderr
    files = sorted(
        (copy / "backup" / STANZA / full_backup.label / "pg_data").rglob("*.gz"),
        key=lambda p: p.stat().st_size,
    )
    victim = files[-1]
    with victim.open("r+b") as f:  # in place: owner and mode unchanged
        f.seek(victim.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))

    report = PgBackRest(STANZA, config_path=cluster.config, repo_path=copy).verify()

    assert not report.ok
    assert full_backup.label in report.detail
    assert "invalid" in report.detail
    assert cluster.engine.verify().ok  # the real repository is untouched


def test_info_and_verify_of_a_missing_stanza_fail_clearly(cluster):
    engine = PgBackRest("nosuch", config_path=cluster.config)

    with pytest.raises(PgBackRestError, match="missing stanza path"):
        engine.info()
    report = engine.verify()
    assert not report.ok
    assert "\n" not in report.detail


def test_a_failed_command_raises_its_last_error_line(cluster):
    engine = PgBackRest("nosuch", config_path=cluster.config)

    with pytest.raises(PgBackRestError) as caught:
        engine.check()

    message = str(caught.value)
    assert message.startswith("pgbackrest check (stanza nosuch) failed: ERROR: [")
    assert "\n" not in message
    assert caught.value.returncode != 0


def test_drill_restores_the_rows_written_before_the_backup(cluster, full_backup):
    cluster.sql("INSERT INTO ledger_rows VALUES (100, 'after the backup')")
    drills = cluster.root / "drills"

    with cluster.engine.restore_drill(
        full_backup.label, database=DATABASE, work_dir=drills
    ) as target:
        rows = restored_rows(target, "SELECT id, memo FROM ledger_rows ORDER BY id")
        in_recovery = restored_rows(target, "SELECT pg_is_in_recovery()")[0][0]
        archive_mode = restored_rows(target, "SHOW archive_mode")[0][0]
        assert list(drills.iterdir())  # the restored copy lives there meanwhile

    assert rows == [(1, "row 1"), (2, "row 2"), (3, "row 3")]
    assert in_recovery is False
    assert archive_mode == "off"  # the drill never pushes WAL into the stanza
    assert isinstance(target, DatabaseTarget)
    assert (target.host, target.name, target.user) == ("127.0.0.1", DATABASE, "postgres")
    assert target.label == full_backup.label
    assert target.restore_seconds > 0
    # Stopped and removed.
    assert list(drills.iterdir()) == []
    with pytest.raises(psycopg.OperationalError):
        restored_rows(target, "SELECT 1")


def test_drill_server_wants_the_drill_password_over_tcp(cluster, full_backup):
    with (
        cluster.engine.restore_drill(full_backup.label, database=DATABASE) as target,
        pytest.raises(psycopg.OperationalError, match="password authentication failed"),
    ):
        psycopg.connect(
            host=target.host,
            port=int(target.port),
            dbname=DATABASE,
            user="postgres",
            password="wrong",
        )


def test_point_in_time_drill_has_the_first_row_and_not_the_second(cluster, full_backup):
    cluster.sql("CREATE TABLE pitr (memo text)")
    cluster.sql("INSERT INTO pitr VALUES ('first')")
    time.sleep(0.2)
    between: datetime = cluster.sql("SELECT clock_timestamp()")[0][0]
    time.sleep(0.2)
    cluster.sql("INSERT INTO pitr VALUES ('second')")
    cluster.archive_current_wal()

    with cluster.engine.restore_drill(target_time=between, database=DATABASE) as target:
        rows = restored_rows(target, "SELECT memo FROM pitr")

    assert rows == [("first",)]
    assert target.target_time == between
    assert target.label in {s.label for s in cluster.engine.info()}


def test_drill_to_a_time_before_any_backup_fails_clearly(cluster, full_backup):
    drills = cluster.root / "drills"
    before = full_backup.backup_set.start.replace(year=2000)

    with (
        pytest.raises(PgBackRestError, match="unable to find backup set with stop time less"),
        cluster.engine.restore_drill(target_time=before, database=DATABASE, work_dir=drills),
    ):
        pass

    assert list(drills.iterdir()) == []


def test_drill_past_the_archived_wal_fails_and_cleans_up(cluster, full_backup):
    drills = cluster.root / "drills"
    future = datetime.now(UTC) + timedelta(days=1)

    with (
        pytest.raises(PgBackRestError, match=r"stopped during recovery: FATAL: .*recovery target"),
        cluster.engine.restore_drill(target_time=future, database=DATABASE, work_dir=drills),
    ):
        pass

    assert list(drills.iterdir()) == []


def test_drill_rejects_a_naive_target_time(cluster):
    with (
        pytest.raises(ValueError, match="aware"),
        cluster.engine.restore_drill(target_time=datetime(2025, 1, 1)),
    ):
        pass
