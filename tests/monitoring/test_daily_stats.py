"""Daily statistics and retention: the day's p50/p95/p99, counts and errors per route and per
task from the minute buckets of that UTC day only; running it twice changes nothing; minute
buckets go after weeks, daily statistics after years."""

from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from monitoring.histogram import slot_of
from monitoring.models import DailyStatistic, RequestBucket, TaskBucket
from monitoring.receivers import on_task_done
from monitoring.services import daily_stats_compute, metrics_purge, request_buckets_write
from monitoring.services.metrics import Tally

DAY = date(2026, 11, 30)
NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def requests(at: datetime, route: str, status_class: str, durations: list[float]) -> None:
    tally = Tally()
    for seconds in durations:
        tally.count += 1
        tally.duration_sum += seconds
        tally.duration_max = max(tally.duration_max, seconds)
        tally.queries += 2
        tally.slots[slot_of(seconds)] += 1
    request_buckets_write({(at, route, "GET", status_class): tally})


def task_run(at: datetime, func: str, success: bool, seconds: float) -> None:
    on_task_done(
        sender=None,
        task={
            "func": func,
            "success": success,
            "started": at,
            "ledgerguard_exec_started": at,
            "stopped": at + timedelta(seconds=seconds),
        },
    )


@pytest.mark.django_db
def test_the_days_statistics_per_route_and_task():
    # 100 requests to one route over two minutes of the day: 95 fast, 5 slow, 2 of them 5xx.
    requests(NOON, "v1:account-list", "2xx", [0.004] * 60)
    requests(NOON + timedelta(minutes=1), "v1:account-list", "2xx", [0.004] * 35 + [0.6] * 3)
    requests(NOON + timedelta(minutes=1), "v1:account-list", "5xx", [0.6] * 2)
    # Not the day: just before and at the next midnight.
    requests(datetime(2026, 11, 29, 23, 59, tzinfo=UTC), "v1:account-list", "2xx", [9.0])
    requests(datetime(2026, 12, 1, 0, 0, tzinfo=UTC), "v1:account-list", "2xx", [9.0])
    task_run(NOON, "backups.tasks.prune", True, 0.2)
    task_run(NOON, "backups.tasks.prune", False, 3.0)

    rows = daily_stats_compute(DAY)
    route = DailyStatistic.objects.get(day=DAY, kind="route")
    assert route.name == "v1:account-list" and route.method == "GET"
    assert route.count == 100 and route.errors == 2 and route.error_rate == 0.02
    assert route.queries == 200 and route.seconds_max == pytest.approx(0.6)
    assert route.p50 is not None and route.p50 <= 0.005  # half of them took 4 ms
    assert route.p95 == pytest.approx(0.005)  # the 95th of 100 is still a fast one
    assert 0.5 < route.p99 <= 0.75
    assert sum(route.histogram) == 100
    task = DailyStatistic.objects.get(day=DAY, kind="task")
    assert task.name == "backups.tasks.prune" and task.count == 2 and task.errors == 1
    assert len(rows) == 2

    daily_stats_compute(DAY)  # again: the same rows, not twice as many
    assert DailyStatistic.objects.filter(day=DAY).count() == 2
    assert DailyStatistic.objects.get(day=DAY, kind="route").count == 100


@pytest.mark.django_db
def test_the_command_says_what_the_day_held_and_refuses_a_bad_date():
    requests(NOON, "v1:account-list", "2xx", [0.3] * 4)
    out = StringIO()
    call_command("daily_stats", "--date", "2026-11-30", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "2026-11-30: 1 routes, 4 requests, 0 errors (5xx); 0 tasks, 0 runs, 0 failed"
    assert lines[1].startswith("  slowest: GET v1:account-list  p95 ")
    with pytest.raises(CommandError) as bad:
        call_command("daily_stats", "--date", "30/11/2026", stdout=StringIO())
    assert bad.value.returncode == 2


@pytest.mark.django_db
def test_retention_removes_old_buckets_and_keeps_years_of_daily_statistics(settings):
    settings.MONITORING_RAW_RETENTION_DAYS = 35
    settings.MONITORING_DAILY_RETENTION_DAYS = 3 * 366
    now = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)
    requests(now - timedelta(days=36), "old", "2xx", [0.01])
    requests(now - timedelta(days=34), "recent", "2xx", [0.01])
    task_run(now - timedelta(days=40), "old.task", True, 0.1)
    daily_stats_compute(date(2023, 11, 1))  # an empty day makes no rows: make one by hand
    DailyStatistic.objects.create(day=date(2023, 11, 1), kind="route", name="ancient")
    DailyStatistic.objects.create(day=date(2024, 6, 1), kind="route", name="kept")
    purged = metrics_purge(now=now)
    assert (purged.request_buckets, purged.task_buckets, purged.daily_statistics) == (1, 1, 1)
    assert list(RequestBucket.objects.values_list("route", flat=True)) == ["recent"]
    assert not TaskBucket.objects.exists()
    assert list(DailyStatistic.objects.values_list("name", flat=True)) == ["kept"]
