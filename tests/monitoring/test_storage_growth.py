"""Database growth per day and per table from the snapshots, the trend over weeks, and where a
user sees it: the API, the admin page and `manage.py daily_stats`."""

from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from monitoring.histogram import slot_of
from monitoring.models import DailyStatistic, DailyStorage, DatabaseSnapshot
from monitoring.selectors import storage_trend
from monitoring.services import (
    daily_stats_compute,
    database_snapshot_take,
    metrics_purge,
    request_buckets_write,
)
from monitoring.services.metrics import Tally

pytestmark = pytest.mark.django_db

MB = 2**20
GB = 2**30
DAY = date(2026, 11, 30)


def evening(day: date, hour: int = 23) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=UTC)


def snapshot(at: datetime, *, database: int, tables: dict[str, int], free: int = 50 * GB):
    return DatabaseSnapshot.objects.create(
        taken_at=at,
        engine="postgresql",
        database_bytes=database,
        disk_free_ratio=free / (100 * GB),
        figures={
            "rows": {"live": 1000, "dead": 3},
            "largest_tables": [
                {"table": name, "total_bytes": size, "live_rows": size // 100}
                for name, size in tables.items()
            ],
        },
        host={"volumes": [{"roles": ["database"], "free_bytes": free, "total_bytes": 100 * GB}]},
    )


def test_growth_per_day_and_per_table_from_the_last_snapshots():
    snapshot(evening(DAY - timedelta(days=1)), database=100 * MB, tables={"lines": 60 * MB})
    snapshot(evening(DAY, 1), database=105 * MB, tables={"lines": 62 * MB})
    # The day's last snapshot is what counts; a new table has no growth (nothing before it).
    snapshot(evening(DAY), database=110 * MB, tables={"lines": 66 * MB, "audit": 9 * MB})
    snapshot(evening(DAY + timedelta(days=1), 1), database=999 * MB, tables={})  # not the day

    daily_stats_compute(DAY)
    rows = {r.table: r for r in DailyStorage.objects.filter(day=DAY)}
    assert set(rows) == {"", "lines", "audit"}
    assert (rows[""].bytes, rows[""].growth_bytes, rows[""].rows) == (110 * MB, 10 * MB, 1000)
    assert (rows["lines"].bytes, rows["lines"].growth_bytes) == (66 * MB, 6 * MB)
    assert (rows["audit"].bytes, rows["audit"].growth_bytes) == (9 * MB, None)
    assert rows["lines"].rows == 66 * MB // 100

    daily_stats_compute(DAY)  # again: the same rows, not twice as many
    assert DailyStorage.objects.filter(day=DAY).count() == 3


def test_a_day_without_snapshots_has_no_storage_rows_and_a_gap_has_no_growth():
    assert daily_stats_compute(DAY) == []
    assert not DailyStorage.objects.exists()
    # The last snapshot before the day is three days old: too old to call it the day's growth.
    snapshot(evening(DAY - timedelta(days=3)), database=50 * MB, tables={})
    snapshot(evening(DAY), database=80 * MB, tables={})
    daily_stats_compute(DAY)
    assert DailyStorage.objects.get(day=DAY, table="").growth_bytes is None


def build_history(days: int, *, last: datetime) -> None:
    """`days` days of a database growing 10 MB a day, its lines table 6 MB, audit 1 MB, and
    the disk losing 2 GB a day from 40 GB free at `last`, a snapshot a day up to `last`."""
    for back in range(days - 1, -1, -1):
        at = last - timedelta(days=back)
        day = at.date()
        grown = days - 1 - back
        snapshot(
            at,
            database=100 * MB + grown * 10 * MB,
            tables={"lines": 60 * MB + grown * 6 * MB, "audit": 20 * MB + grown * MB},
            free=40 * GB + back * 2 * GB,
        )
        daily_stats_compute(day)


def test_the_trend_per_table_and_for_the_database_with_days_until_the_disk_is_full():
    build_history(10, last=evening(DAY))
    trend = storage_trend(now=evening(DAY) + timedelta(minutes=5))
    assert trend.database is not None
    assert trend.database.bytes == 190 * MB and trend.database.days == 10
    assert trend.database.bytes_per_day == pytest.approx(10 * MB)
    assert [(g.table, round(g.bytes_per_day or 0)) for g in trend.tables] == [
        ("lines", 6 * MB),
        ("audit", 1 * MB),
    ]
    assert trend.disk_free_bytes == 40 * GB and trend.disk_free_percent == pytest.approx(40.0)
    assert trend.days_until_disk_full == pytest.approx(20.0)  # 40 GB at 2 GB a day

    # A shorter look back sees fewer days.
    assert storage_trend(days=3, now=evening(DAY)).database.days == 3  # type: ignore[union-attr]


def test_the_api_serves_growth_per_day_and_the_trend(api, make_user):
    build_history(5, last=evening(DAY))
    api.as_user(make_user("auditor"))
    response = api.get(
        "/api/v1/metrics/storage/", {"table": "lines", "since": "2026-11-29", "until": "2026-12-01"}
    )
    assert response.status_code == 200, response.content
    body = response.json()["results"]
    assert [(r["day"], r["bytes"], r["growth_bytes"]) for r in body] == [
        ("2026-11-30", 84 * MB, 6 * MB),
        ("2026-11-29", 78 * MB, 6 * MB),
    ]


def test_the_api_serves_the_trend_up_to_now(api, make_user):
    build_history(10, last=timezone.now() - timedelta(minutes=1))
    api.as_user(make_user("auditor"))
    trend = api.get("/api/v1/metrics/storage/trend/", {"days": 30})
    assert trend.status_code == 200, trend.content
    data = trend.json()
    assert data["days"] == 30
    assert data["database"]["bytes"] == 190 * MB
    assert data["database"]["bytes_per_day"] == pytest.approx(10 * MB)
    assert [t["table"] for t in data["tables"]] == ["lines", "audit"]
    assert data["days_until_disk_full"] == pytest.approx(20.0)
    assert data["disk_free_percent"] == pytest.approx(40.0)
    # The default look back is four weeks; an empty history gives nulls, not an error.
    DailyStorage.objects.all().delete()
    empty = api.get("/api/v1/metrics/storage/trend/").json()
    assert (empty["days"], empty["database"], empty["tables"]) == (28, None, [])


@pytest.mark.parametrize("days", ["0", "1", "-3", "abc", "1.5", "99999999999999999999"])
def test_the_trend_refuses_a_bad_range_in_the_error_shape(api, make_user, days):
    api.as_user(make_user("operator"))
    response = api.get("/api/v1/metrics/storage/trend/", {"days": days})
    assert response.status_code == 400
    assert response.json()["error"]["fields"].keys() == {"days"}


def test_finance_roles_do_not_see_storage(api, make_user):
    api.as_user(make_user("finance_clerk"))
    assert api.get("/api/v1/metrics/storage/").status_code == 403
    assert api.get("/api/v1/metrics/storage/trend/").status_code == 403


def test_the_admin_page_shows_the_trend_above_the_days(client, make_user):
    build_history(10, last=timezone.now() - timedelta(minutes=1))
    client.force_login(make_user("operator"))
    page = client.get("/admin/monitoring/dailystorage/")
    assert page.status_code == 200
    text = page.content.decode().replace("\xa0", " ")
    assert "Growth over the last 28 days" in text
    assert "(whole database)" in text and "+10.0 MB" in text and "+6.0 MB" in text
    assert "full in 20.0 days at the current trend" in text


def test_daily_stats_prints_the_growth_and_the_forecast():
    build_history(8, last=evening(DAY))
    out = StringIO()
    call_command("daily_stats", "--date", DAY.isoformat(), stdout=out)
    text = out.getvalue()
    assert "storage: (whole database)  170.0 MB, +10.0 MB that day, trend +10.0 MB/day" in text
    assert "storage: lines  102.0 MB, +6.0 MB that day" in text
    assert "disk full in: 20.0 days" in text


def test_a_real_snapshot_on_this_engine_gives_per_table_rows():
    database_snapshot_take()
    today = datetime.now(UTC).date()
    daily_stats_compute(today)
    rows = DailyStorage.objects.filter(day=today)
    assert rows.get(table="").bytes > 0
    assert rows.filter(table__startswith="monitoring_").exists()


def test_storage_rows_are_kept_for_years_like_the_daily_statistics(settings):
    DailyStorage.objects.create(day=date(2020, 1, 1), table="", bytes=1)
    DailyStorage.objects.create(day=date(2026, 1, 1), table="", bytes=1)
    purged = metrics_purge(now=evening(DAY))
    assert purged.daily_storage == 1
    assert list(DailyStorage.objects.values_list("day", flat=True)) == [date(2026, 1, 1)]


@pytest.mark.parametrize(
    "figures",
    [
        [],
        "x",
        {"rows": 5},
        {"rows": {"live": "many"}},
        {"largest_tables": "x"},
        {"largest_tables": [{"table": "x", "total_bytes": "n/a"}]},
        {"largest_tables": [{"table": None, "total_bytes": 1}]},
        {"largest_tables": [{"table": ["a"], "total_bytes": 1}]},
        {"largest_tables": [{"table": "", "total_bytes": 1}]},
        {"largest_tables": [{"table": "t", "total_bytes": 2**70}]},
        {"largest_tables": [{"table": "t", "total_bytes": True}]},
        {
            "largest_tables": [
                {"table": "a" * 300, "total_bytes": 1},
                {"table": "a" * 301, "total_bytes": 2},
            ]
        },
    ],
)
def test_odd_snapshot_figures_are_skipped_and_the_days_statistics_stand(figures):
    tally = Tally(count=3, duration_sum=0.03, duration_max=0.01)
    tally.slots[slot_of(0.01)] = 3
    request_buckets_write({(evening(DAY, 12), "v1:account-list", "GET", "2xx"): tally})
    DatabaseSnapshot.objects.create(
        taken_at=evening(DAY), engine="sqlite", database_bytes=5 * MB, figures=figures
    )
    assert len(daily_stats_compute(DAY)) == 1
    database = DailyStorage.objects.get(day=DAY, table="")
    assert database.bytes == 5 * MB and database.rows is None
    assert all(
        0 <= r.bytes < 2**63 and r.table.strip() for r in DailyStorage.objects.exclude(table="")
    )


def test_the_trend_drops_tables_of_the_past_and_starts_over_at_a_break():
    def day_of(back: int, engine: str, database: int, tables: dict[str, int]) -> None:
        at = evening(DAY - timedelta(days=back))
        DatabaseSnapshot.objects.create(
            taken_at=at,
            engine=engine,
            database_bytes=database,
            figures={"largest_tables": [{"table": t, "total_bytes": b} for t, b in tables.items()]},
        )
        daily_stats_compute(at.date())

    # Two days on SQLite at 500 MB with a large table since dropped ...
    day_of(6, "sqlite", 500 * MB, {"gone": 400 * MB})
    day_of(5, "sqlite", 500 * MB, {"gone": 400 * MB})
    # ... then five flat days at 50 MB on PostgreSQL: the line starts at the switch (no growth
    # figure across engines), flat, not falling from 500 MB; the dropped table is not listed.
    for back in range(4, -1, -1):
        day_of(back, "postgresql", 50 * MB, {"kept": 30 * MB})
    assert DailyStorage.objects.get(day=DAY - timedelta(days=4), table="").growth_bytes is None
    trend = storage_trend(now=evening(DAY) + timedelta(minutes=5))
    assert [g.table for g in trend.tables] == ["kept"]
    assert trend.database is not None
    assert (trend.database.bytes_per_day, trend.database.days) == (0.0, 5)


def test_rerunning_a_day_past_retention_keeps_its_figures(settings):
    old = date(2020, 3, 1)
    DailyStorage.objects.create(day=old, table="", bytes=7)
    DailyStatistic.objects.create(day=old, kind="route", name="r", method="GET", count=3)
    call_command("daily_stats", "--date", old.isoformat(), stdout=StringIO())
    assert DailyStorage.objects.get(day=old).bytes == 7
    assert DailyStatistic.objects.get(day=old).count == 3
