"""The metrics API: who may read it, time ranges, percentiles, and hostile parameters answered
in the documented error shape."""

from datetime import UTC, date, datetime, timedelta

import pytest

from monitoring.histogram import slot_of
from monitoring.models import DatabaseSnapshot
from monitoring.services import daily_stats_compute, request_buckets_write
from monitoring.services.metrics import Tally

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ENDPOINTS = [
    "/api/v1/metrics/requests/",
    "/api/v1/metrics/tasks/",
    "/api/v1/metrics/daily/",
    "/api/v1/metrics/thresholds/",
    "/api/v1/metrics/slow-requests/",
    "/api/v1/metrics/slow-queries/",
    "/api/v1/metrics/snapshots/",
]


def bucket(minute: datetime, seconds: float, count: int = 10) -> None:
    tally = Tally(count=count, duration_sum=count * seconds, duration_max=seconds, queries=count)
    tally.slots[slot_of(seconds)] = count
    request_buckets_write({(minute, "v1:account-list", "GET", "2xx"): tally})


def rows(response) -> list[dict]:
    body = response.json()
    return body["results"] if isinstance(body, dict) and "results" in body else body


@pytest.mark.django_db
@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    ("role", "status"),
    [("auditor", 200), ("operator", 200), ("admin", 200), ("finance_clerk", 403)],
)
def test_each_role_reads_what_it_may(api, make_user, path, role, status):
    assert api.get(path).status_code == 401
    assert api.as_user(make_user(role)).get(path).status_code == status


@pytest.mark.django_db
def test_request_buckets_over_a_time_range_with_their_percentiles(api, make_user):
    for minute in range(3):
        bucket(T0 + timedelta(minutes=minute), 0.02 * (minute + 1))
    client = api.as_user(make_user("operator"))
    response = client.get(
        "/api/v1/metrics/requests/",
        {"since": (T0 + timedelta(minutes=1)).isoformat(), "until": "2026-11-30T12:03:00Z"},
    )
    assert response.status_code == 200
    found = rows(response)
    assert [r["minute"] for r in found] == ["2026-11-30T12:02:00Z", "2026-11-30T12:01:00Z"]
    newest = found[0]
    assert newest["count"] == 10 and len(newest["histogram"]) == 15
    assert 0.05 < newest["p95"] <= 0.075  # 60 ms requests, in the 50-75 ms bucket


@pytest.mark.django_db
def test_daily_statistics_by_day(api, make_user):
    bucket(T0, 0.3)
    daily_stats_compute(date(2026, 11, 30))
    client = api.as_user(make_user("auditor"))
    found = rows(client.get("/api/v1/metrics/daily/", {"since": "2026-11-30", "kind": "route"}))
    assert [(r["day"], r["name"], r["count"]) for r in found] == [
        ("2026-11-30", "v1:account-list", 10)
    ]
    assert rows(client.get("/api/v1/metrics/daily/", {"until": "2026-11-30"})) == []


@pytest.mark.django_db
def test_the_slowest_routes_of_a_day(api, make_user):
    for route, seconds in (("v1:account-list", 0.02), ("v1:entry-list", 0.9), ("health", 0.3)):
        tally = Tally(count=10, duration_sum=10 * seconds, duration_max=seconds)
        tally.slots[slot_of(seconds)] = 10
        request_buckets_write({(T0, route, "GET", "2xx"): tally})
    daily_stats_compute(date(2026, 11, 30))
    client = api.as_user(make_user("operator"))
    query = {"kind": "route", "since": "2026-11-30", "until": "2026-12-01", "ordering": "-p95"}
    found = rows(client.get("/api/v1/metrics/daily/", query))
    assert [r["name"] for r in found] == ["v1:entry-list", "health", "v1:account-list"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        {"since": "yesterday"},
        {"until": "2026-13-45T99:00:00Z"},
        {"since": "\x00"},
        {"status_class": "x" * 5000},
        {"ordering": "-secret"},
    ],
)
def test_hostile_parameters_get_a_clear_answer_never_a_500(api, make_user, query):
    response = api.as_user(make_user("admin")).get("/api/v1/metrics/requests/", query)
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert set(response.json()["error"]) == {"code", "message", "fields"}


@pytest.mark.django_db
def test_thresholds_are_read_only_through_the_api(api, make_user):
    client = api.as_user(make_user("admin"))
    listed = rows(client.get("/api/v1/metrics/thresholds/"))
    assert {t["name"] for t in listed} >= {"p95-latency", "error-rate"}
    first = listed[0]["id"]
    assert client.patch(f"/api/v1/metrics/thresholds/{first}/", {"value": 1}).status_code == 405
    assert client.delete(f"/api/v1/metrics/thresholds/{first}/").status_code == 405


@pytest.mark.django_db
def test_snapshots_over_a_time_range(api, make_user):
    for hours in (0, 1, 2):
        DatabaseSnapshot.objects.create(
            taken_at=T0 + timedelta(hours=hours), engine="sqlite", database_bytes=1000 + hours
        )
    client = api.as_user(make_user("auditor"))
    found = rows(client.get("/api/v1/metrics/snapshots/", {"since": "2026-11-30T13:00:00Z"}))
    assert [r["database_bytes"] for r in found] == [1002, 1001]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "until",
    [
        "0161-06-02T04:05:08.598026-16:39",  # an offset PostgreSQL cannot hold
        "0001-01-01T00:00:00+05:00",  # before year 1 once in UTC
        "9999-12-31T23:59:59-05:00",  # after year 9999 once in UTC
    ],
)
def test_times_the_database_cannot_hold_are_converted_or_refused(api, make_user, until):
    response = api.as_user(make_user("admin")).get("/api/v1/metrics/snapshots/", {"until": until})
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert response.json()["error"]["fields"]["until"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["requests", "tasks", "daily", "storage"])
def test_tables_without_lasting_ids_have_no_detail_route(api, make_user, path):
    client = api.as_user(make_user("admin"))
    assert client.get(f"/api/v1/metrics/{path}/1/").status_code == 404
