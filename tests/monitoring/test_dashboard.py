"""The Performance dashboard (monitoring/dashboard.py): who sees it and which sections, the
figures it reads (percentiles from summed histograms, per step), its Overview tiles, bounded
queries, hostile query strings and the demo's metrics."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from monitoring import selectors
from monitoring.dashboard import overview_tiles
from monitoring.histogram import SLOTS, percentile
from monitoring.models import (
    DailyStatistic,
    DailyStorage,
    ErrorGroup,
    ErrorStatus,
    RequestBucket,
    SlowQuery,
    SlowRequest,
    TaskBucket,
    Threshold,
)
from monitoring.services import error_group_resolve, error_record
from tests.monitoring.helpers import caught, site_a, site_b

pytestmark = pytest.mark.django_db

PAGE = "/admin/dashboards/performance/"
ROLES_ALLOWED = ("auditor", "operator", "admin")
ROLES_REFUSED = ("finance_clerk", "finance_approver")

FAST = [10, 20, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
SLOW = [0, 0, 0, 0, 0, 0, 2, 4, 3, 1, 0, 0, 0, 0, 0]


def _slots(counts: list[int]) -> dict[str, int]:
    return {f"h{i:02d}": n for i, n in enumerate(counts)}


def bucket(minute: datetime, route: str = "entry-list", status: str = "2xx", hist=FAST, **kw):
    return RequestBucket(
        minute=minute.replace(second=0, microsecond=0),
        route=route,
        method=kw.pop("method", "GET"),
        status_class=status,
        count=sum(hist),
        duration_sum=kw.pop("duration_sum", 0.01 * sum(hist)),
        duration_max=0.1,
        **_slots(hist),
        **kw,
    )


def traffic(
    now: datetime,
    *,
    routes: int = 2,
    minutes: int = 5,
    tasks: int = 2,
    rows: int = 3,
    tag: str = "",
):
    """Some of everything the page reads: request and task buckets, daily statistics and
    storage, slow requests and queries, thresholds' state, error groups. Scaled by its
    arguments for the query-count tests."""
    RequestBucket.objects.bulk_create(
        bucket(now - timedelta(minutes=m), route=f"{tag}route-{r}", status=s)
        for r in range(routes)
        for m in range(minutes)
        for s in ("2xx", "5xx")
    )
    TaskBucket.objects.bulk_create(
        TaskBucket(
            minute=(now - timedelta(minutes=m)).replace(second=0, microsecond=0),
            func=f"{tag}app.tasks.job_{t}",
            outcome="success",
            count=3,
            run_seconds_sum=0.3,
            **_slots([3] + [0] * (SLOTS - 1)),
        )
        for t in range(tasks)
        for m in range(minutes)
    )
    today = now.date()
    DailyStatistic.objects.bulk_create(
        DailyStatistic(
            day=today - timedelta(days=d),
            kind=kind,
            name=f"{tag}route-{r}" if kind == "route" else f"{tag}app.tasks.job_{r}",
            method="GET" if kind == "route" else "",
            count=35,
            errors=1,
            seconds_sum=0.35,
            **_slots(FAST),
        )
        for d in range(1, rows + 1)
        for r in range(routes)
        for kind in ("route", "task")
    )
    DailyStorage.objects.bulk_create(
        DailyStorage(
            day=today - timedelta(days=d), table=t, bytes=10**8 - d * 10**6, growth_bytes=10**6
        )
        for d in range(rows * 3)
        for t in [f"{tag}table-{r}" for r in range(routes)] + ([] if tag else [""])
    )
    SlowQuery.objects.bulk_create(
        SlowQuery(at=now - timedelta(minutes=i), route="entry-post", sql=f"SELECT {i}", seconds=i)
        for i in range(rows * 5)
    )
    SlowRequest.objects.bulk_create(
        SlowRequest(
            at=now - timedelta(minutes=i), route="entry-post", method="POST", status=200, seconds=i
        )
        for i in range(rows * 5)
    )


@pytest.fixture
def user_of(make_user):
    def make(role: str):
        return make_user(role)

    return make


# --- who sees what ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES_ALLOWED)
def test_roles_with_the_metrics_see_the_page_and_every_section(client, user_of, role):
    traffic(timezone.now())
    client.force_login(user_of(role))
    response = client.get(PAGE)
    assert response.status_code == 200
    text = response.text
    for heading in (
        "Latency percentiles",
        "Slowest routes",
        "Thresholds on these figures",
        "Task queue",
        "Database size and growth",
        "Slowest queries",
        "Slowest requests",
        "Error groups",
    ):
        assert heading in text, heading
    assert text.count('src="data:image/svg+xml;base64,') == 4
    assert "<form" not in text.split('id="content-main"')[1]  # read-only: no buttons


@pytest.mark.parametrize("role", ROLES_REFUSED)
def test_roles_without_the_metrics_are_refused(client, user_of, role):
    client.force_login(user_of(role))
    assert client.get(PAGE).status_code == 403


def test_anonymous_gets_the_login_page(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_sections_follow_each_tables_permission(client, make_user):
    traffic(timezone.now())
    client.force_login(make_user(permissions=["monitoring.view_requestbucket"]))
    text = client.get(PAGE).text
    assert "Latency percentiles" in text and "Slowest routes" in text
    for hidden in (
        "Thresholds on these figures",
        "Task queue",
        "Database size and growth",
        "Slowest queries",
        "Slowest requests",
        "Error groups",
    ):
        assert hidden not in text, hidden


def test_the_tab_and_tiles_are_only_for_roles_that_see_the_page(client, user_of):
    traffic(timezone.now())
    client.force_login(user_of("finance_clerk"))
    text = client.get("/admin/").text
    assert PAGE not in text and "Requests, last 24 hours" not in text
    client.force_login(user_of("auditor"))
    text = client.get("/admin/").text
    assert PAGE in text and "Requests, last 24 hours" in text and "Database growth" in text


# --- the figures ------------------------------------------------------------------------------


def test_an_hour_is_sixty_minute_steps_with_percentiles_from_the_summed_histogram():
    now = timezone.now()
    RequestBucket.objects.bulk_create(
        [
            bucket(now, route="a", hist=FAST),
            bucket(now, route="b", hist=SLOW, method="POST"),
            bucket(now, route="b", status="5xx", hist=SLOW, method="POST"),
            bucket(now - timedelta(minutes=3), route="a"),
            bucket(now - timedelta(hours=2), route="a"),  # outside the hour
        ]
    )
    steps = selectors.request_steps(span=timedelta(hours=1), step=timedelta(minutes=1), now=now)
    assert len(steps) == 60 and steps[-1].start == now.replace(second=0, microsecond=0)
    last = steps[-1].figures
    summed = [a + 2 * b for a, b in zip(FAST, SLOW, strict=True)]
    assert last.count == sum(summed) and last.errors == sum(SLOW)
    assert last.p95 == percentile(summed, 0.95) and last.p50 == percentile(summed, 0.50)
    assert steps[-4].figures.count == sum(FAST)
    assert sum(s.figures.count for s in steps) == sum(summed) + sum(FAST)
    assert steps[0].figures.p95 is None and steps[0].figures.error_rate is None


def test_a_week_is_six_hour_steps_from_hourly_sums():
    now = datetime(2026, 6, 10, 14, 30, tzinfo=UTC)
    RequestBucket.objects.bulk_create(
        [
            bucket(datetime(2026, 6, 10, 12, 5, tzinfo=UTC)),
            bucket(datetime(2026, 6, 10, 13, 59, tzinfo=UTC)),
            bucket(datetime(2026, 6, 10, 11, 59, tzinfo=UTC)),
        ]
    )
    steps = selectors.request_steps(span=timedelta(days=7), step=timedelta(hours=6), now=now)
    assert len(steps) == 28
    assert steps[-1].start == datetime(2026, 6, 10, 12, tzinfo=UTC)
    assert steps[-1].figures.count == 2 * sum(FAST)
    assert steps[-2].figures.count == sum(FAST)


def test_a_month_reads_the_daily_statistics_then_the_buckets_after_them():
    now = datetime(2026, 6, 10, 14, 30, tzinfo=UTC)
    for day in (date(2026, 6, 8), date(2026, 6, 9)):
        DailyStatistic.objects.create(
            day=day,
            kind="route",
            name="entry-list",
            method="GET",
            count=100,
            errors=4,
            **_slots([100]),
        )
    RequestBucket.objects.bulk_create(
        [
            # A day the statistics cover: not counted twice.
            bucket(datetime(2026, 6, 9, 10, tzinfo=UTC)),
            bucket(datetime(2026, 6, 10, 9, tzinfo=UTC), status="5xx"),
        ]
    )
    steps = selectors.request_steps(span=timedelta(days=30), step=timedelta(days=1), now=now)
    assert len(steps) == 30
    by_day = {s.start.date(): s.figures for s in steps}
    assert by_day[date(2026, 6, 9)].count == 100 and by_day[date(2026, 6, 9)].errors == 4
    assert by_day[date(2026, 6, 10)].count == sum(FAST)
    assert by_day[date(2026, 6, 10)].errors == sum(FAST)
    routes = selectors.slow_routes(since=steps[0].start, now=now, by_day=True)
    assert [(r.name, r.figures.count) for r in routes] == [("entry-list", 200 + sum(FAST))]


def test_slow_routes_rank_by_p95_and_queries_by_time_within_the_range():
    now = timezone.now()
    RequestBucket.objects.bulk_create(
        [bucket(now, route="quick", hist=FAST), bucket(now, route="slow", hist=SLOW)]
    )
    ranked = selectors.slow_routes(since=now - timedelta(hours=1), now=now)
    assert [r.name for r in ranked] == ["slow", "quick"]
    SlowQuery.objects.bulk_create(
        [
            SlowQuery(at=now - timedelta(minutes=5), route="r", sql="SELECT 1", seconds=0.5),
            SlowQuery(at=now - timedelta(minutes=9), route="r", sql="SELECT 2", seconds=2.5),
            SlowQuery(at=now - timedelta(hours=3), route="r", sql="SELECT 3", seconds=9.0),
        ]
    )
    found = selectors.slowest_queries(since=now - timedelta(hours=1), limit=10)
    assert [q.sql for q in found] == ["SELECT 2", "SELECT 1"]


def test_the_page_shows_the_ranges_figures(client, user_of):
    now = timezone.now()
    RequestBucket.objects.bulk_create(
        [bucket(now, route="trial-balance", hist=SLOW), bucket(now, status="5xx", hist=FAST)]
    )
    client.force_login(user_of("auditor"))
    text = client.get(PAGE, {"range": "hour"}).text
    assert "trial-balance" in text
    assert f"{100 * sum(FAST) / (sum(FAST) + sum(SLOW)):.2f}% ({sum(FAST)})" in text
    assert 'aria-current="true">Last hour' in text


# --- the Overview's tiles ---------------------------------------------------------------------


def _tiles(client, user) -> dict[str, object]:
    client.force_login(user)
    response = client.get("/admin/")
    assert response.status_code == 200
    return {t.key: t for t in response.context["overview_tiles"] if t.key.startswith("performance")}


def test_tiles_say_no_data_yet_without_metrics(client, user_of):
    tiles = _tiles(client, user_of("operator"))
    assert tiles["performance-requests"].status == "none"
    assert tiles["performance-errors"].status == "ok"
    assert tiles["performance-database"].status == "none"


def test_new_or_regressed_errors_make_the_errors_tile_bad(client, user_of, alerts):
    operator = user_of("operator")
    old = error_record(exc=caught(site_a, "old"), source="other").group
    ErrorGroup.objects.filter(pk=old.pk).update(first_seen=timezone.now() - timedelta(days=9))
    assert _tiles(client, operator)["performance-errors"].status == "ok"

    error_group_resolve(group=old, actor=operator)
    error_record(exc=caught(site_a, "again"), source="other")  # a regression
    error_record(exc=caught(site_b, "new"), source="other")  # a new group
    tile = _tiles(client, operator)["performance-errors"]
    assert tile.status == "bad" and "2 unresolved" in tile.summary
    assert tile.url.endswith("/admin/monitoring/errorgroup/?status__exact=unresolved")
    assert client.get(tile.url).status_code == 200

    ErrorGroup.objects.update(status=ErrorStatus.IGNORED)
    assert _tiles(client, operator)["performance-errors"].status == "ok"


@pytest.mark.parametrize(("severity", "status"), [("warning", "warn"), ("error", "bad")])
def test_a_firing_threshold_colours_the_requests_tile(client, user_of, severity, status):
    traffic(timezone.now())
    Threshold.objects.filter(metric="latency_p95_ms").update(
        firing=True, severity=severity, last_value=812.0
    )
    tile = _tiles(client, user_of("auditor"))["performance-requests"]
    assert tile.status == status and "firing" in tile.summary and "812" in tile.summary


def test_the_requests_and_database_tiles_are_ok_under_the_thresholds(client, user_of):
    traffic(timezone.now())
    tiles = _tiles(client, user_of("auditor"))
    requests = tiles["performance-requests"]
    assert requests.status == "ok" and "p95" in requests.summary
    assert dict(requests.rows)["Requests"] == f"{2 * 5 * 2 * sum(FAST):,}"
    database = tiles["performance-database"]
    assert database.status == "ok" and "a day" in database.summary


def test_a_firing_disk_threshold_makes_the_database_tile_bad(client, user_of):
    traffic(timezone.now())
    Threshold.objects.filter(metric="days_until_disk_full").update(firing=True, severity="error")
    assert _tiles(client, user_of("auditor"))["performance-database"].status == "bad"


# --- bounded queries ----------------------------------------------------------------------------


# Session, user, the two second-factor devices, the permissions (6); the request steps and the
# slow routes (2); thresholds (1); the queue (3) and the tasks (1); the database: its sizes, the
# storage trend, the fresh snapshot and the week of snapshots (4); slow queries and requests
# (2); error groups (2). A month reads the daily statistics first: two more queries each for
# the steps, the routes and the tasks (the newest day they cover, then their sums).
@pytest.mark.parametrize(
    ("range_key", "queries"), [("hour", 21), ("day", 21), ("week", 21), ("month", 27)]
)
def test_the_page_makes_as_many_queries_with_five_times_the_rows(
    client, user_of, django_assert_max_num_queries, range_key, queries
):
    client.force_login(user_of("admin"))
    now = timezone.now()
    traffic(now)
    with django_assert_max_num_queries(queries):
        assert client.get(PAGE, {"range": range_key}).status_code == 200
    traffic(now - timedelta(minutes=6), routes=10, minutes=25, tasks=10, rows=15, tag="more-")
    with django_assert_max_num_queries(queries):
        assert client.get(PAGE, {"range": range_key}).status_code == 200


def test_the_tiles_make_as_many_queries_with_five_times_the_rows(
    rf, user_of, django_assert_max_num_queries
):
    request = rf.get("/admin/")
    request.user = user_of("operator")
    request.user.has_perm("monitoring.view_errorgroup")  # the permission cache, as a page has
    now = timezone.now()
    traffic(now)
    error_record(exc=caught(site_a), source="other")
    # Thresholds, requests, error groups (2), database sizes, the week of snapshots.
    with django_assert_max_num_queries(6):
        assert len(overview_tiles(request)) == 3
    traffic(now - timedelta(minutes=6), routes=10, minutes=25, tasks=10, rows=15, tag="more-")
    error_record(exc=caught(site_b), source="other")
    # Thresholds, requests, error groups (2), database sizes, the week of snapshots.
    with django_assert_max_num_queries(6):
        assert len(overview_tiles(request)) == 3


# --- hostile query strings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"range": "zzz"},
        {"range": "year"},  # a range of the frame's, not offered here
        {"range": "x" * 5000},
        {"range": ["hour", "month"]},
        {"page": "x"},
        {"since": "garbage"},
        {"range": "hour\x00"},
    ],
)
def test_hostile_query_strings_fall_back_to_the_default(client, user_of, query):
    traffic(timezone.now())
    client.force_login(user_of("operator"))
    response = client.get(PAGE, query)
    assert response.status_code == 200


# --- the demo -----------------------------------------------------------------------------------


def test_the_demo_seeds_a_month_of_metrics_that_every_range_shows(client, user_of):
    call_command("seed_demo", days=30)
    assert DailyStatistic.objects.filter(day__lt=timezone.localdate() - timedelta(days=8)).exists()
    assert ErrorGroup.objects.filter(status=ErrorStatus.RESOLVED).count() == 2
    client.force_login(user_of("auditor"))
    for range_key in ("hour", "day", "week", "month"):
        response = client.get(PAGE, {"range": range_key})
        assert response.status_code == 200
        assert response.text.count('src="data:image/svg+xml;base64,') == 4
        assert "No requests recorded in this range" not in response.text
    tiles = _tiles(client, user_of("auditor"))
    assert tiles["performance-errors"].status == "bad"
    assert tiles["performance-database"].status == "ok"
    call_command("seed_demo", days=30)  # again: nothing doubled
    assert ErrorGroup.objects.filter(status=ErrorStatus.RESOLVED).count() == 2
