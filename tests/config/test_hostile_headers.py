"""Control characters in header values are refused before anything reads them, and a failed
login is counted and recorded whatever django-axes does."""

import pytest
from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessAttempt
from django.contrib.auth import authenticate
from django.db import DataError
from django.test import RequestFactory
from rest_framework.test import APIClient

from audit.models import AuditEvent
from config.models import ApiToken
from tests.factories import PASSWORD

TOKEN = "/api/v1/auth/token/"


def _login(password: str, **headers):
    return APIClient().post(
        TOKEN, {"username": "clerk", "password": password}, format="json", **headers
    )


@pytest.mark.parametrize("password", [PASSWORD, "wrong-password"])
@pytest.mark.parametrize("value", ["curl\x00", "a\x01b", "x\x1b[31m", "line\nbreak", "del\x7f"])
def test_control_characters_in_a_header_are_a_400_whichever_the_password(
    db, clerk, password, value
):
    response = _login(password, HTTP_USER_AGENT=value)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "header.invalid"
    assert error["fields"] == {"headers": ["User-Agent"]}
    assert not ApiToken.objects.exists()
    assert not AccessAttempt.objects.exists()


def test_every_header_and_every_path_is_covered(db, client):
    for path in ("/admin/login/", "/api/v1/accounts/", "/health/live", "/nowhere/"):
        response = client.get(path, HTTP_X_FORWARDED_FOR="1.2.3.4\x00")
        assert response.status_code == 400, path
        assert response.json()["error"]["fields"] == {"headers": ["X-Forwarded-For"]}
    assert client.post("/admin/login/", {}, CONTENT_TYPE="text/plain\x00").status_code == 400


def test_tabs_and_unicode_in_headers_are_fine(db, clerk):
    response = _login(PASSWORD, HTTP_USER_AGENT="Mozilla/5.0\t(Ünïcødé)")
    assert response.status_code == 201


def test_a_failed_login_with_a_nul_that_slips_past_is_still_counted_and_recorded(db, clerk):
    """Straight to django.contrib.auth.authenticate, as any other login path would: django-axes
    stores the user agent, which PostgreSQL refuses with a NUL in it."""
    request = RequestFactory().post("/api/v1/auth/token/", HTTP_USER_AGENT="evil\x00agent")
    assert authenticate(request, username="clerk", password="wrong") is None
    attempt = AccessAttempt.objects.get()
    assert attempt.failures_since_start == 1
    assert "\x00" not in attempt.user_agent
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 1


def test_lockout_bookkeeping_failing_never_makes_a_login_a_500(db, clerk, monkeypatch):
    def broken(*args, **kwargs):
        raise DataError("simulated: the lockout table refused the row")

    monkeypatch.setattr(AxesDatabaseHandler, "user_login_failed", broken)
    monkeypatch.setattr(AxesDatabaseHandler, "user_logged_in", broken)
    wrong = _login("wrong-password")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "auth.failed"
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.metadata == {"username": "clerk", "method": "password"}
    right = _login(PASSWORD)
    assert right.status_code == 201
