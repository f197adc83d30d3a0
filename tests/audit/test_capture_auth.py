"""Capture of authentication and refusals: API tokens, logins, failed logins, lockouts, password
changes and access denials write their audit events, and no password or token reaches the
trail."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from alerts import services as alerting
from alerts.models import Target
from config.models import ApiToken
from finance.models import FiscalPeriod
from tests.audit.helpers import IP, UA, logged_in, notification, raise_capture, stored_text
from tests.factories import PASSWORD

pytestmark = pytest.mark.usefixtures("only_catalogued_actions")


# API tokens -----------------------------------------------------------------


def test_api_tokens_issue_revoke_and_refusals_never_store_the_token(db, clerk, trail):
    response = APIClient().post(
        "/api/v1/auth/token/",
        {"username": "clerk", "password": PASSWORD, "name": "ci"},
        format="json",
        REMOTE_ADDR=IP,
    )
    assert response.status_code == 201
    raw = response.json()["token"]
    token = ApiToken.objects.get()
    created = trail.one("api_token.created")
    assert created.actor_id == clerk.pk and created.ip == IP
    assert created.object_id == str(token.pk) and created.metadata["user"] == clerk.pk

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.delete(f"/api/v1/auth/tokens/{token.pk}/").status_code == 204
    revoked = trail.one("api_token.revoked")
    assert revoked.actor_id == clerk.pk  # the request's user, authenticated by that token

    assert client.get("/api/v1/accounts/").status_code == 401
    refused = trail.one("auth.login_failed")
    assert refused.metadata == {"method": "token"} and refused.actor_id is None

    text = stored_text()
    assert raw not in text and raw[3:] not in text and token.prefix not in text
    assert token.digest not in text


# Authentication and denials ---------------------------------------------------


def test_login_failed_login_and_logout_through_the_admin_login_view(clerk, trail):
    client = Client(REMOTE_ADDR=IP, HTTP_USER_AGENT=UA)
    wrong = "Tr0ub4dor&3-not-it"
    refused = client.post("/admin/login/", {"username": "clerk", "password": wrong})
    assert refused.status_code == 200  # the form again
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "clerk", "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302
    assert client.post("/admin/logout/").status_code in (200, 302)

    assert trail.actions() == ["auth.login_failed", "auth.login", "auth.logout"]
    failed, login, logout = trail.events()
    assert failed.metadata == {"username": "clerk", "method": "password"}
    assert failed.actor_id is None and failed.actor_repr == "system"
    for event in (failed, login, logout):
        assert (event.ip, event.user_agent) == (IP, UA) and event.request_id
    assert login.actor_id == clerk.pk and login.object_id == str(clerk.pk)
    assert logout.actor_id == clerk.pk
    text = stored_text()
    assert wrong not in text and PASSWORD not in text


def test_a_lockout_after_repeated_failed_logins_is_recorded(clerk, trail, settings):
    """Five wrong passwords from one address lock the username out there (django-axes): the
    sixth attempt, even with the right password, is refused with 429 and the trail has it."""
    client = Client(REMOTE_ADDR=IP, HTTP_USER_AGENT=UA)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "clerk", "password": "wrong-password"})
    locked = client.post("/admin/login/", {"username": "clerk", "password": PASSWORD})
    assert locked.status_code == 429 and b"Too many failed logins" in locked.content
    assert "_auth_user_id" not in client.session
    # django-axes reports the lockout when the limit is reached, and again for each attempt
    # it refuses while the lockout lasts.
    lockout, refused = trail.events("auth.lockout")
    # The fifth failure locks (axes reports it while handling that failure, before ours).
    limit = settings.AXES_FAILURE_LIMIT
    assert trail.actions("auth.")[: limit + 1] == [
        *["auth.login_failed"] * (limit - 1),
        "auth.lockout",
        "auth.login_failed",
    ]
    assert lockout.metadata == refused.metadata == {"username": "clerk", "ip": IP}
    assert (lockout.ip, lockout.user_agent) == (IP, UA)
    assert trail.actions("auth.").count("auth.login_failed") >= settings.AXES_FAILURE_LIMIT
    assert "auth.login" not in trail.actions()
    # Another address is not locked out: nobody can lock a colleague out from elsewhere.
    other = Client(REMOTE_ADDR="203.0.113.99")
    assert (
        other.post(
            "/admin/login/?next=/admin/",
            {"username": "clerk", "password": PASSWORD, "next": "/admin/"},
        ).status_code
        == 302
    )


def test_a_locked_out_api_login_answers_429_in_the_error_shape(clerk, api, settings):
    body = {"username": "clerk", "password": "wrong-password", "name": "laptop"}
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert api.post("/api/v1/auth/token/", body, format="json").status_code in (401, 429)
    response = api.post("/api/v1/auth/token/", {**body, "password": PASSWORD}, format="json")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert response.json()["error"]["code"] in ("auth.locked_out", "throttled")


def test_a_403_from_the_api_records_access_denied(api, clerk, ledger, trail):
    period = FiscalPeriod.objects.get(start_date__lte=ledger.today, end_date__gte=ledger.today)
    path = f"/api/v1/periods/{period.pk}/close/"
    response = api.as_user(clerk).post(path, REMOTE_ADDR=IP)
    assert response.status_code == 403
    denied = trail.one("access.denied")
    assert denied.metadata == {"method": "POST", "path": path, "status": 403}
    assert denied.actor_id == clerk.pk and denied.ip == IP
    assert trail.actions("period.") == []


def test_a_403_from_an_admin_page_and_a_csrf_failure_record_access_denied(
    auditor, admin_user, trail
):
    reader, csrf = logged_in(auditor), logged_in(admin_user, enforce_csrf_checks=True)
    trail.mark()
    assert reader.get("/admin/alerts/target/add/").status_code == 403
    assert csrf.post("/admin/alerts/target/add/", {"name": "x"}).status_code == 403
    first, second = trail.events()
    assert (first.action, first.actor_id) == ("access.denied", auditor.pk)
    assert first.metadata == {"method": "GET", "path": "/admin/alerts/target/add/", "status": 403}
    assert (second.action, second.actor_id) == ("access.denied", admin_user.pk)
    assert second.metadata["method"] == "POST"
    assert not Target.objects.exists()


def test_a_denied_ack_link_does_not_put_its_token_in_the_trail(db, trail):
    alert = raise_capture(key="csrf")
    token = alerting.ack_token(delivery=notification(alert))
    response = Client(enforce_csrf_checks=True).post(f"/alerts/ack/{token}/")
    assert response.status_code == 403
    denied = trail.one("access.denied")
    assert denied.metadata["path"] == "/alerts/ack/[redacted]/"
    assert token not in stored_text()


def test_behind_trusted_proxies_the_client_address_is_recorded(clerk, trail, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    client = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7, 192.0.2.44")
    client.post("/admin/login/", {"username": "clerk", "password": "not-it"})
    # One trusted proxy appended the last address: that one is the client as the proxy saw it.
    assert trail.one("auth.login_failed").ip == "192.0.2.44"


def test_changing_your_own_password_is_recorded(clerk, trail):
    client = logged_in(clerk)
    clerk.is_staff = True
    clerk.save(update_fields=["is_staff"])
    trail.mark()
    new = "a-new-Passw0rd-for-clerk"
    response = client.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    event = trail.one("auth.password_changed")
    assert (event.actor_id, event.object_id) == (clerk.pk, str(clerk.pk))
    assert new not in stored_text() and PASSWORD not in stored_text()
