"""Database and host snapshots, on the engine the tests run on, with real figures."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.utils import timezone
from django_q.models import Schedule

from config.schedules import declared_jobs
from monitoring import tasks
from monitoring.dbmetrics import metrics_for
from monitoring.hostmetrics import cpu_reading
from monitoring.models import DatabaseSnapshot, RequestBucket
from monitoring.selectors import database_snapshot_latest, database_snapshot_list
from monitoring.services import database_snapshot_take

pytestmark = pytest.mark.django_db

SNAPSHOTS = "/admin/monitoring/databasesnapshot/"


def postgres_only():
    if connection.features.guard_dialect != "postgresql":
        pytest.skip("PostgreSQL figures")


def sqlite_only():
    if connection.features.guard_dialect != "sqlite":
        pytest.skip("SQLite figures")


def write_buckets(n: int = 4000) -> None:
    minute = timezone.now().replace(second=0, microsecond=0)
    RequestBucket.objects.bulk_create(
        RequestBucket(
            minute=minute,
            route=f"route-{i:05d}-" + "x" * 150,
            method="GET",
            status_class="2xx",
            count=i,
        )
        for i in range(n)
    )


def test_snapshot_after_writing_rows_shows_a_larger_database():
    before = database_snapshot_take()
    write_buckets()
    after = database_snapshot_take()
    assert before.engine == after.engine == connection.features.guard_dialect
    assert after.database_bytes > before.database_bytes > 0
    assert DatabaseSnapshot.objects.count() == 2


def test_postgresql_figures():
    postgres_only()
    write_buckets()
    snapshot = database_snapshot_take()
    snapshot.refresh_from_db()
    figures = snapshot.figures
    largest = {t["table"]: t for t in figures["largest_tables"]}
    assert len(figures["largest_tables"]) == 20
    bucket = largest["monitoring_requestbucket"]
    assert bucket["table_bytes"] > 0 and bucket["index_bytes"] > 0
    assert bucket["total_bytes"] >= bucket["table_bytes"] + bucket["index_bytes"]
    assert {"live", "dead"} <= set(figures["rows"])
    assert snapshot.connections_total >= 1 and figures["connections"].get("active", 0) >= 1
    assert 0 < snapshot.cache_hit_ratio <= 1 and snapshot.deadlocks == 0
    assert figures["database"]["commits"] > 0
    assert {"rollbacks", "temp_bytes"} <= set(figures["database"])
    assert figures["replication"] == {
        "replicas": [],
        "standby": False,
        "standby_lag_seconds": None,
    }
    assert "longest_query" in figures and "longest_transaction" in figures


def test_postgresql_top_statements_from_pg_stat_statements():
    postgres_only()
    snapshot = database_snapshot_take()
    top = snapshot.figures["top_statements"]
    assert snapshot.figures["pg_stat_statements"]
    assert 0 < len(top) <= 10
    assert [s["total_ms"] for s in top] == sorted((s["total_ms"] for s in top), reverse=True)
    assert all(s["calls"] >= 1 and s["query"] for s in top)
    assert all(len(s["query"]) <= 200 for s in top)


def test_postgresql_without_the_extension_the_snapshot_still_works():
    postgres_only()
    with connection.cursor() as cursor:
        cursor.execute("DROP EXTENSION pg_stat_statements")  # rolled back with the test
    snapshot = database_snapshot_take()
    assert snapshot.figures["pg_stat_statements"] is None
    assert snapshot.figures["top_statements"] == []
    assert any("pg_stat_statements" in note for note in snapshot.figures["notes"])
    assert snapshot.database_bytes > 0


def test_postgresql_role_without_read_all_stats_degrades_with_notes():
    postgres_only()
    with connection.cursor() as cursor:
        # Roles and SET LOCAL are rolled back with the test's transaction.
        cursor.execute("CREATE ROLE snapshot_reader NOLOGIN")
        cursor.execute("SET LOCAL ROLE snapshot_reader")
    try:
        figures = metrics_for(connection).collect(connection)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
    assert figures.database_bytes > 0
    top = figures.figures["top_statements"]
    assert top and all(s["query"] is None for s in top)  # run as postgres: text hidden
    assert any("pg_read_all_stats" in note for note in figures.notes)
    assert figures.volume_path is None  # data_directory needs pg_read_all_settings
    assert any(note.startswith("data directory") for note in figures.notes)


def test_sqlite_figures():
    sqlite_only()
    write_buckets()
    snapshot = database_snapshot_take()
    figures = snapshot.figures
    assert figures["page_count"] > 0 and figures["page_size"] > 0
    assert figures["freelist_count"] >= 0
    assert snapshot.database_bytes == figures["page_count"] * figures["page_size"]
    assert figures["file_bytes"] > 0 and figures["wal_bytes"] >= 0
    assert snapshot.connections_total is None and snapshot.cache_hit_ratio is None
    assert 0 < snapshot.disk_free_ratio < 1
    # The largest tables with their indexes, from dbstat: the buckets just written lead.
    largest = figures["largest_tables"]
    assert 0 < len(largest) <= 20
    assert largest[0]["table"] == "monitoring_requestbucket"
    top = largest[0]
    assert top["table_bytes"] > 0 and top["index_bytes"] > 0
    assert top["total_bytes"] == top["table_bytes"] + top["index_bytes"]
    assert [t["total_bytes"] for t in largest] == sorted(
        (t["total_bytes"] for t in largest), reverse=True
    )


def test_host_figures_hold_cpu_memory_and_the_backup_volume(backup_dir):
    snapshot = database_snapshot_take()
    host = snapshot.host
    assert 0 <= host["cpu_percent"] <= 100 * host["cpu_count"]
    assert host["cpu_window_seconds"] > 0
    assert len(host["load_average"]) == 3
    assert host["memory_total_bytes"] >= host["memory_available_bytes"] > 0
    assert 0 < host["memory_percent"] < 100
    assert host["process_rss_bytes"] > 0
    backups = next(v for v in host["volumes"] if "backups" in v["roles"])
    assert backups["free_bytes"] > 0 and backups["total_bytes"] >= backups["free_bytes"]
    # The folder is not made yet: its nearest existing parent is measured.
    assert str(backup_dir).startswith(backups["paths"]["backups"])
    # One entry per device: a folder on the database's volume is not listed twice.
    roles = [role for v in host["volumes"] for role in v["roles"]]
    assert sorted(roles) == sorted(set(roles))


def test_backups_in_object_storage_have_no_local_volume(settings):
    settings.BACKUP_S3_BUCKET = "ledgerguard-backups"
    snapshot = database_snapshot_take()
    assert not any("backups" in v["roles"] for v in snapshot.host["volumes"])


def test_cpu_reading_after_the_first_covers_the_time_since_the_last():
    cpu_reading()
    percent, window = cpu_reading()  # less than a second later: measured over 0.1 s again
    assert window == pytest.approx(0.1) and 0 <= percent <= 100


def test_command_prints_a_summary_and_stores_a_snapshot():
    out = StringIO()
    call_command("metrics_snapshot", stdout=out)
    text = out.getvalue()
    snapshot = DatabaseSnapshot.objects.get()
    assert f"snapshot #{snapshot.pk}: engine {snapshot.engine}" in text
    assert "database " in text and "connections " in text and "disk free" in text
    assert "backups" in text


def test_command_fails_in_one_line_with_status_1(monkeypatch):
    def down(**kwargs):
        raise DatabaseError("connection refused\nmore detail")

    monkeypatch.setattr(
        "monitoring.management.commands.metrics_snapshot.database_snapshot_take", down
    )
    with pytest.raises(CommandError) as raised:
        call_command("metrics_snapshot", stdout=StringIO())
    assert raised.value.returncode == 1
    assert str(raised.value) == "no snapshot taken: connection refused"
    assert not DatabaseSnapshot.objects.exists()


def test_task_stores_a_snapshot_and_the_schedule_runs_every_five_minutes():
    pk = tasks.take_database_snapshot()
    assert DatabaseSnapshot.objects.filter(pk=pk).exists()
    job = next(j for j in declared_jobs() if j.name == "monitoring.database_snapshot")
    assert job.func == "monitoring.tasks.take_database_snapshot"
    assert job.schedule_type == Schedule.MINUTES and job.minutes == 5


def test_selectors_read_snapshots_over_a_time_range(django_assert_num_queries):
    now = timezone.now()
    made = [
        DatabaseSnapshot.objects.create(
            engine="sqlite", database_bytes=i, taken_at=now - timedelta(minutes=5 * i)
        )
        for i in range(4)
    ]
    with django_assert_num_queries(1):
        window = list(database_snapshot_list(since=now - timedelta(minutes=10), until=now))
    assert window == [made[2], made[1]]
    assert list(database_snapshot_list()) == made[::-1]
    assert database_snapshot_latest() == made[0]


@pytest.mark.parametrize("role", ["operator", "auditor", "admin"])
def test_admin_changelist_readable_by_operators_auditors_and_admins(client, make_user, role):
    snapshot = database_snapshot_take()
    client.force_login(make_user(role))
    listing = client.get(SNAPSHOTS)
    assert listing.status_code == 200
    assert snapshot.engine in listing.text
    detail = client.get(f"{SNAPSHOTS}{snapshot.pk}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.text
    assert client.get(f"{SNAPSHOTS}add/").status_code == 403


def test_admin_changelist_hidden_from_finance_roles(client, make_user):
    client.force_login(make_user("finance_clerk", is_staff=True))
    assert client.get(SNAPSHOTS).status_code == 403
