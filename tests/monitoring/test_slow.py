"""Slow requests and slow queries: recorded past their thresholds with the route, the duration
and the statement's shape, never the values it carried."""

import pytest
from django.test import Client

from monitoring.models import SlowQuery, SlowRequest
from monitoring.requestmetrics import AGGREGATOR
from monitoring.sqlshape import sql_shape


@pytest.fixture(autouse=True)
def _fresh():
    AGGREGATOR.discard()
    yield
    AGGREGATOR.discard()


def test_the_shape_of_a_statement_keeps_what_it_does_not_what_it_said():
    assert (
        sql_shape("SELECT * FROM auth_user WHERE username = 'alice' AND id IN (%s, %s, %s)")
        == "SELECT * FROM auth_user WHERE username = ? AND id IN (...)"
    )
    assert sql_shape("UPDATE t SET amount = 125.50, n = -3 WHERE id = 42") == (
        "UPDATE t SET amount = ?, n = ? WHERE id = ?"
    )
    assert sql_shape("INSERT INTO t (a, b) VALUES (%s, %s), (%s, %s), (%s, %s)") == (
        "INSERT INTO t (a, b) VALUES (...), ..."
    )
    assert sql_shape("SELECT 'it''s' FROM \"table1\" t1") == 'SELECT ? FROM "table1" t1'
    assert len(sql_shape("SELECT " + "x, " * 5000)) == 2000
    # The ORM's Q(id=1) | Q(id=2) | ... : one shape however many ids.
    for n in (2, 15):
        ors = " OR ".join(['"finance_account"."id" = %s'] * n)
        one = '"finance_account"."id" = %s OR ...'
        assert sql_shape(f'SELECT * FROM "finance_account" WHERE ({ors}) AND "x" = %s') == (
            f'SELECT * FROM "finance_account" WHERE ({one}) AND "x" = %s'
        )
    different = '"t"."id" = %s OR "t"."name" = %s'
    assert sql_shape(f"SELECT 1 FROM t WHERE {different}") == f"SELECT ? FROM t WHERE {different}"


@pytest.mark.django_db
def test_a_slow_request_and_its_slow_query_are_recorded_without_their_values(settings, admin_user):
    settings.MONITORING_SLOW_REQUEST_MS = 0  # every request is slow
    settings.MONITORING_SLOW_QUERY_MS = 0  # and every query
    client = Client()
    client.force_login(admin_user)
    secret = "hunter2-value-never-stored"
    client.get("/api/v1/accounts/", {"code": secret})
    AGGREGATOR.write()
    request = SlowRequest.objects.get(route="v1:account-list")
    assert request.method == "GET" and request.status == 200 and request.seconds > 0
    assert request.queries >= 1 and request.request_id
    queries = SlowQuery.objects.filter(route="v1:account-list")
    assert queries.exists()
    assert all(secret not in q.sql for q in queries)
    assert any("finance_account" in q.sql for q in queries)


@pytest.mark.django_db
def test_fast_requests_leave_nothing(settings):
    settings.MONITORING_SLOW_REQUEST_MS = 60_000
    settings.MONITORING_SLOW_QUERY_MS = 60_000
    Client().get("/health/live")
    AGGREGATOR.write()
    assert not SlowRequest.objects.exists() and not SlowQuery.objects.exists()
