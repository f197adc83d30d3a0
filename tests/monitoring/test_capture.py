"""Errors are captured where they happen: views, API views, django-q2 tasks."""

import traceback

import pytest
from django_q.signals import post_execute

from monitoring.models import ErrorEvent, ErrorGroup, ErrorSource
from tests.monitoring.helpers import caught, site_a

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.monitoring.urls")]


@pytest.fixture
def web(client):
    client.raise_request_exception = False
    return client


def test_failing_view_is_recorded_with_route_user_and_request_id(web, make_user):
    user = make_user(username="viewer")
    web.force_login(user)
    response = web.get(
        "/boom/7/?q=invoices&password=hunter2&note=4111+1111+1111+1111",
        HTTP_X_REQUEST_ID="req-view-000001",
    )
    assert response.status_code == 500
    event = ErrorEvent.objects.select_related("group").get()
    assert event.source == ErrorSource.REQUEST
    assert event.route == "boom/<int:pk>/" and event.method == "GET"
    assert event.request_id == "req-view-000001"
    assert event.user == user and event.user_repr == "viewer"
    assert event.payload == {"query": {"q": "invoices", "password": "[redacted]", "note": "[card]"}}
    assert event.message == "boom 7"
    assert event.group.exception_type == "RuntimeError"
    assert event.group.culprit == "tests.monitoring.urls.boom"


def test_failing_view_records_a_json_body_sanitized(web):
    response = web.post(
        "/boom/8/",
        {
            "amount": "10.00",
            "card": {"number": "4111111111111111"},
            "memo": "card 5500 0000 0000 0004",
        },
        content_type="application/json",
    )
    assert response.status_code == 500
    event = ErrorEvent.objects.get()
    assert event.method == "POST" and event.user is None and len(event.request_id) == 32
    assert event.payload["body"] == {"amount": "10.00", "card": "[redacted]", "memo": "card [card]"}


def test_failing_view_records_a_form_body(web):
    web.post("/boom/9/", {"name": "x", "password": "p"})
    assert ErrorEvent.objects.get().payload["body"] == {"name": "x", "password": "[redacted]"}


def test_same_view_failing_twice_is_one_group(web):
    web.get("/boom/1/")
    web.get("/boom/2/")
    group = ErrorGroup.objects.get()
    assert group.count == 2 and group.message == "boom 2"


def test_not_found_is_not_an_error(web):
    assert web.get("/missing/").status_code == 404
    assert not ErrorEvent.objects.exists()


def test_api_500_is_recorded_and_keeps_the_error_shape(api, make_user):
    user = make_user(username="apiuser")
    client = api.as_user(user)
    client.raise_request_exception = False
    response = client.post(
        "/api/boom/",
        {"amount": "5.00", "token": "t0k3n"},
        format="json",
        HTTP_X_REQUEST_ID="req-api-0000001",
    )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert set(response.json()["error"]) == {"code", "message", "fields"}
    event = ErrorEvent.objects.select_related("group").get()  # once: not by the middleware too
    assert event.source == ErrorSource.REQUEST and event.route == "ApiBoomView"
    assert event.method == "POST" and event.request_id == "req-api-0000001"
    assert event.user == user
    assert event.payload == {"query": {}, "body": {"amount": "5.00", "token": "[redacted]"}}
    assert event.group.exception_type == "RuntimeError" and event.message == "api boom"


def test_api_answers_that_are_not_500_are_not_recorded(api):
    assert api.post("/api/boom/", {}, format="json").status_code in (401, 403)
    assert not ErrorEvent.objects.exists()


def _task(*, success: bool, result) -> dict:
    return {
        "id": "8f0a",
        "name": "alpha-bravo-charlie",
        "func": "tests.monitoring.helpers.site_a",
        "args": ("message",),
        "kwargs": {"password": "p"},
        "group": None,
        "success": success,
        "result": result,
        "cluster": "ledgerguard",
    }


def test_failed_task_is_recorded_from_the_post_execute_signal():
    exc = caught(site_a, "task went wrong")
    # What django-q2's worker stores for a failure: "<exception> : <traceback>".
    result = f"{exc} : {''.join(traceback.format_exception(exc))}"
    post_execute.send(sender="django_q", task=_task(success=False, result=result))
    event = ErrorEvent.objects.select_related("group").get()
    assert event.source == ErrorSource.TASK and event.task_name == "alpha-bravo-charlie"
    assert event.message == "task went wrong"
    assert event.group.exception_type == "ValueError"
    assert event.group.culprit == "tests.monitoring.helpers.fail"
    assert event.payload["func"] == "tests.monitoring.helpers.site_a"
    assert event.payload["kwargs"] == {"password": "[redacted]"}
    assert event.payload["task_id"] == "8f0a"
    assert "Traceback (most recent call last)" in event.traceback


def test_successful_task_is_not_recorded():
    post_execute.send(sender="django_q", task=_task(success=True, result=42))
    assert not ErrorEvent.objects.exists()


def test_task_failure_without_traceback_is_a_task_failed_error():
    post_execute.send(sender="django_q", task=_task(success=False, result=None))
    event = ErrorEvent.objects.select_related("group").get()
    assert event.group.exception_type == "TaskFailed" and event.source == ErrorSource.TASK


def test_exception_in_middleware_is_recorded_once(web, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.monitoring.urls.ExplodingMiddleware"]
    assert web.get("/explode/").status_code == 500
    event = ErrorEvent.objects.get()
    assert event.message == "middleware exploded" and event.route == "/explode/"


def test_failing_view_is_recorded_once_not_twice(web):
    web.get("/boom/1/")
    assert ErrorEvent.objects.count() == 1
