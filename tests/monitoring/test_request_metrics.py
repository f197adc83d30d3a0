"""Request metrics as an operator relies on them: the right minute buckets and percentiles for
requests of known durations and statuses, routes by URL pattern name (never a client's path),
sums that hold when two writers add to the same minute, nothing lost while the database is
down, and /metrics readable by Prometheus's own parser from loopback or with the token only."""

import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError, close_old_connections, connection
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from monitoring.histogram import BOUNDS, percentile, slot_of
from monitoring.models import RequestBucket
from monitoring.requestmetrics import AGGREGATOR, UNMATCHED, Aggregator, flush_at_exit
from monitoring.services import request_buckets_write
from monitoring.services.metrics import Tally

real = pytest.mark.django_db(transaction=True)
MINUTE = datetime(2026, 12, 3, 10, 15, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_tallies():
    """Each test starts with nothing pending in this process's aggregator."""
    AGGREGATOR.discard()
    yield
    AGGREGATOR.discard()


def one_request(
    aggregator: Aggregator, *, seconds: float = 0.01, at: datetime | None = MINUTE
) -> None:
    """A GET of health-live answered 200 in `seconds`, without queries, in minute `at`."""
    aggregator.add(
        route="health-live",
        method="GET",
        status=200,
        seconds=seconds,
        queries=0,
        query_seconds=0,
        at=at,
    )


# --- the histogram ----------------------------------------------------------------------------


def test_durations_fall_in_the_bucket_of_their_upper_bound():
    assert slot_of(0.001) == 0 and slot_of(0.005) == 0 and slot_of(0.0051) == 1
    assert slot_of(10.0) == len(BOUNDS) - 1 and slot_of(60.0) == len(BOUNDS)


def test_percentiles_are_read_from_the_bucket_counts():
    counts = [0] * (len(BOUNDS) + 1)
    counts[slot_of(0.004)] = 90  # 90 requests up to 5 ms
    counts[slot_of(0.3)] = 10  # 10 between 250 and 500 ms
    assert percentile(counts, 0.5) == pytest.approx(0.005 * 50 / 90)
    assert percentile(counts, 0.95) == pytest.approx(0.25 + 0.25 * 5 / 10)
    assert percentile(counts, 0.99) == pytest.approx(0.25 + 0.25 * 9 / 10)
    assert percentile([0] * (len(BOUNDS) + 1), 0.5) is None


# --- buckets ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_requests_of_known_durations_make_the_right_buckets():
    aggregator = Aggregator()
    for seconds in (0.003, 0.004, 0.2, 0.3):
        aggregator.add(
            route="v1:account-list",
            method="GET",
            status=200,
            seconds=seconds,
            queries=3,
            query_seconds=0.001,
            at=MINUTE + timedelta(seconds=7),
        )
    aggregator.add(
        route="v1:account-list",
        method="GET",
        status=503,
        seconds=1.5,
        queries=1,
        query_seconds=0.5,
        at=MINUTE,
    )
    aggregator.add(
        route="v1:account-list",
        method="GET",
        status=200,
        seconds=0.01,
        queries=0,
        query_seconds=0,
        at=MINUTE + timedelta(minutes=1),
    )
    assert aggregator.write() == 3
    ok = RequestBucket.objects.get(minute=MINUTE, status_class="2xx")
    assert ok.count == 4 and ok.queries == 12 and ok.duration_max == pytest.approx(0.3)
    assert ok.duration_sum == pytest.approx(0.507)
    assert ok.histogram[0] == 2 and ok.histogram[slot_of(0.2)] == 1 and ok.histogram[7] == 1
    assert percentile(ok.histogram, 0.5) == pytest.approx(0.005)
    failed = RequestBucket.objects.get(minute=MINUTE, status_class="5xx")
    assert failed.count == 1 and failed.query_seconds == pytest.approx(0.5)
    assert RequestBucket.objects.get(minute=MINUTE + timedelta(minutes=1)).count == 1
    assert aggregator.pending() == 0


@real
def test_two_writers_adding_to_the_same_minute_add_up():
    """Two processes' batches for one minute, written at once from two connections."""
    key = (MINUTE, "v1:account-list", "GET", "2xx")
    rounds = 25
    errors: list[BaseException] = []

    def writer(seconds: float) -> None:
        try:
            for _ in range(rounds):
                tally = Tally(count=2, duration_sum=2 * seconds, duration_max=seconds, queries=4)
                tally.slots[slot_of(seconds)] = 2
                request_buckets_write({key: tally})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=writer, args=(s,)) for s in (0.004, 0.6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    bucket = RequestBucket.objects.get()
    assert bucket.count == 2 * 2 * rounds and bucket.queries == 2 * 4 * rounds
    assert bucket.histogram[slot_of(0.004)] == 2 * rounds
    assert bucket.histogram[slot_of(0.6)] == 2 * rounds
    assert bucket.duration_max == pytest.approx(0.6)
    assert bucket.duration_sum == pytest.approx(rounds * 2 * (0.004 + 0.6))


@pytest.mark.django_db
def test_tallies_survive_a_database_that_is_down_and_are_written_later():
    aggregator = Aggregator()
    one_request(aggregator)

    def down(execute, sql, params, many, context):
        raise OperationalError("server closed the connection unexpectedly")

    with connection.execute_wrapper(down):
        assert aggregator.write() == 0
    assert aggregator.pending() == 1
    one_request(aggregator, seconds=0.02)
    assert aggregator.write() == 1
    assert RequestBucket.objects.get().count == 2


# --- the middleware ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_requests_are_counted_by_route_name_never_by_path(settings, admin_user):
    settings.MONITORING_FLUSH_SECONDS = 0
    client = Client()
    for _ in range(3):
        assert client.get("/health/live").status_code == 200
    client.get("/no/such/page/7f3a9b")
    client.force_login(admin_user)
    client.get("/api/v1/accounts/999999/")  # 404 from the view: still its route
    AGGREGATOR.write()
    rows = {(b.route, b.method, b.status_class): b for b in RequestBucket.objects.all()}
    assert rows[("health-live", "GET", "2xx")].count == 3
    assert rows[(UNMATCHED, "GET", "4xx")].count == 1
    detail = rows[("v1:account-detail", "GET", "4xx")]
    assert detail.count == 1 and detail.queries >= 1 and detail.query_seconds > 0
    assert not any("7f3a9b" in route or "999999" in route for route, _, _ in rows)


@pytest.mark.django_db
def test_an_unknown_method_is_counted_as_other(settings):
    Client().generic("BREW", "/health/live")
    AGGREGATOR.write()
    assert RequestBucket.objects.get().method == "OTHER"


# --- /metrics ---------------------------------------------------------------------------------


def families(body: bytes) -> dict:
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def requests_counted(body: bytes, route: str) -> float:
    family = families(body)["ledgerguard_http_request_duration_seconds"]
    return sum(
        s.value for s in family.samples if s.name.endswith("_count") and s.labels["route"] == route
    )


@pytest.mark.django_db
def test_metrics_parse_and_count_the_requests_from_loopback():
    client = Client()
    before = requests_counted(client.get("/metrics").content, "health-live")
    for _ in range(4):
        client.get("/health/live")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert requests_counted(response.content, "health-live") == before + 4
    assert "ledgerguard_http_request_db_queries" in families(response.content)


@pytest.mark.django_db
def test_metrics_are_refused_to_other_addresses_unless_they_bring_the_token(settings):
    far = Client(REMOTE_ADDR="203.0.113.9")
    assert far.get("/metrics").status_code == 404
    settings.MONITORING_METRICS_TOKEN = "scrape-secret-0123456789"
    assert far.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    allowed = far.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-0123456789")
    assert allowed.status_code == 200
    assert far.post("/metrics").status_code == 404
    token = "Bearer scrape-secret-0123456789"
    assert far.post("/metrics", HTTP_AUTHORIZATION=token).status_code == 405


# --- from the attack review -----------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_through_an_untrusted_proxy_need_the_token(settings):
    """Behind a proxy on the same host, every client arrives as 127.0.0.1: with no proxy
    trusted (NUM_PROXIES 0), a forwarded request is not let in by its address."""
    proxied = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert proxied.get("/metrics").status_code == 404
    settings.MONITORING_METRICS_TOKEN = "scrape-secret-0123456789"
    assert (
        proxied.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-0123456789").status_code
        == 200
    )
    assert Client(REMOTE_ADDR="::ffff:127.0.0.1").get("/metrics").status_code == 200


@pytest.mark.django_db
def test_metrics_still_answer_when_the_database_is_down():
    def down(execute, sql, params, many, context):
        raise OperationalError("server closed the connection unexpectedly")

    Client().get("/health/live")
    with connection.execute_wrapper(down):
        response = Client().get("/metrics")
    assert response.status_code == 200
    names = families(response.content)
    assert "ledgerguard_http_request_duration_seconds" in names
    assert names["ledgerguard_task_metrics_up"].samples[0].value == 0


@pytest.mark.django_db
def test_any_write_failure_keeps_the_buckets_and_the_slow_records(monkeypatch):
    aggregator = Aggregator()
    one_request(aggregator)

    def broken(tallies):
        raise ValueError("not a database error")

    monkeypatch.setattr("monitoring.requestmetrics.request_buckets_write", broken)
    assert aggregator.write() == 0
    assert aggregator.pending() == 1
    monkeypatch.undo()
    assert aggregator.write() == 1


@real
def test_a_blocked_write_holds_no_request_thread_and_an_exit_flush_waits_for_it(
    settings, monkeypatch
):
    """The write runs in the writer's thread: a database that blocks it (SQLite's busy timeout,
    a failover) does not hold the thread that served the request; a process about to exit
    waits for it, then writes what came in meanwhile."""
    settings.MONITORING_WRITE_AFTER_RESPONSE = True
    settings.MONITORING_FLUSH_SECONDS = 0
    writing, release = threading.Event(), threading.Event()
    real_write = request_buckets_write

    def blocked(tallies):
        writing.set()
        assert release.wait(30)
        return real_write(tallies)

    monkeypatch.setattr("monitoring.requestmetrics.request_buckets_write", blocked)
    client = Client()
    assert client.get("/health/live").status_code == 200  # its request_finished starts a write
    assert writing.wait(10), "no write started"
    # The request thread is free again while the write waits: it serves another request.
    assert client.get("/no-such-page/").status_code == 404
    assert not RequestBucket.objects.exists()
    release.set()
    monkeypatch.undo()
    flush_at_exit()
    routes = dict(RequestBucket.objects.values_list("route", "count"))
    assert routes == {"health-live": 1, UNMATCHED: 1}


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_metrics_take_no_writes_and_say_so(method):
    response = getattr(Client(enforce_csrf_checks=True), method)("/metrics")
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"


@real
def test_an_exit_that_cannot_wait_for_a_stuck_write_says_how_much_it_leaves(
    settings, monkeypatch, caplog
):
    settings.MONITORING_WRITE_AFTER_RESPONSE = True
    settings.MONITORING_FLUSH_SECONDS = 0
    release = threading.Event()

    def stuck(tallies):
        assert release.wait(30)
        return 0

    monkeypatch.setattr("monitoring.requestmetrics.request_buckets_write", stuck)
    monkeypatch.setattr("monitoring.requestmetrics.EXIT_WAIT_SECONDS", 0.2)
    Client().get("/health/live")
    try:
        with caplog.at_level("WARNING", logger="ledgerguard.monitoring"):
            flush_at_exit()
        assert "a write of 1 requests was still waiting for the database" in caplog.text
    finally:
        release.set()


@pytest.mark.django_db
def test_metrics_refuse_a_write_from_elsewhere_as_they_refuse_a_read():
    client = Client(REMOTE_ADDR="203.0.113.9")
    assert client.get("/metrics").status_code == 404
    assert client.post("/metrics").status_code == 404  # not a 405 that says it exists


@pytest.mark.django_db
def test_a_failed_write_keeps_the_in_flight_count_right(monkeypatch):
    aggregator = Aggregator()
    one_request(aggregator)

    def broken(tallies):
        raise ValueError("down")

    def busy_while_logging(*args, **kwargs):
        # Requests land on the put-back tallies while the failure is logged.
        for _ in range(5):
            one_request(aggregator)

    monkeypatch.setattr("monitoring.requestmetrics.request_buckets_write", broken)
    monkeypatch.setattr("monitoring.requestmetrics.logger.warning", busy_while_logging)
    assert aggregator.write() == 0
    assert aggregator.in_flight == 0 and aggregator.pending() == 1


@real
def test_the_exit_write_waits_for_a_locked_database_no_longer_than_its_time(
    settings, monkeypatch, caplog
):
    """A worker stopping while another process holds SQLite's write lock: the exit write gives
    up within the exit's time (the master would kill it at its graceful timeout) and says what
    it leaves, instead of hanging in the busy timeout."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's write lock")
    monkeypatch.setattr("monitoring.requestmetrics.EXIT_WAIT_SECONDS", 1.0)
    one_request(AGGREGATOR, at=None)
    holder = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with caplog.at_level("WARNING", logger="ledgerguard.monitoring"):
            flush_at_exit()
    finally:
        holder.rollback()
        holder.close()
    assert "1 buckets could not be written" in caplog.text
    assert AGGREGATOR.pending() == 1


@real
def test_a_write_due_while_one_is_under_way_is_not_dropped(settings, monkeypatch):
    """The last request before a quiet spell asked for a write while the writer was busy: the
    writer writes it before it ends, instead of leaving it until the next request."""
    settings.MONITORING_WRITE_AFTER_RESPONSE = True
    settings.MONITORING_FLUSH_SECONDS = 0
    writing, release = threading.Event(), threading.Event()
    real_write = request_buckets_write

    def slow_first(tallies):
        if not writing.is_set():
            writing.set()
            assert release.wait(30)
        return real_write(tallies)

    monkeypatch.setattr("monitoring.requestmetrics.request_buckets_write", slow_first)
    client = Client()
    client.get("/health/live")
    assert writing.wait(10)
    client.get("/no-such-page/")  # due now, while the first write waits
    release.set()
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while RequestBucket.objects.count() < 2 and datetime.now(UTC) < deadline:
        threading.Event().wait(0.05)
    assert dict(RequestBucket.objects.values_list("route", "count")) == {
        "health-live": 1,
        UNMATCHED: 1,
    }
