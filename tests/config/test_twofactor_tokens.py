"""API tokens only for a user who passed the second factor: POST /api/v1/auth/token/ asks for
`otp` from an enrolled user (and from all staff while ADMIN_REQUIRE_2FA is on), and a missing
or wrong code counts towards the lockout like a wrong password."""

import json

import pytest
from axes.models import AccessAttempt
from django.db import OperationalError
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from audit.models import AuditEvent
from config.models import ApiToken
from monitoring.models import ErrorEvent
from tests.config.test_twofactor import code_for, enrolled, password_login, trail
from tests.factories import PASSWORD

TOKEN = "/api/v1/auth/token/"


def obtain(username: str, **extra) -> object:
    body = {"username": username, "password": PASSWORD, **extra}
    return APIClient().post(TOKEN, body, format="json")


def test_an_enrolled_user_needs_a_code(db, clerk, settings):
    settings.ADMIN_REQUIRE_2FA = False
    device, codes = enrolled(clerk)
    missing = obtain("clerk")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "auth.otp_required"
    assert "otp" in missing.json()["error"]["fields"]
    assert not ApiToken.objects.exists()

    ok = obtain("clerk", otp=code_for(device, 1))
    assert ok.status_code == 201, ok.content
    assert ApiToken.objects.count() == 1
    assert obtain("clerk", otp=codes[0]).status_code == 201  # a recovery code, once
    event = AuditEvent.objects.filter(action="auth.otp_verified").latest("id")
    assert event.metadata == {
        "method": "recovery_code",
        "purpose": "api_token",
        "device": event.metadata["device"],
        "remaining": 9,
    }
    assert codes[0] not in trail() and codes[0].replace("-", "") not in trail()


def test_a_wrong_code_is_refused_and_counts_towards_the_lockout(db, clerk, settings):
    device, _ = enrolled(clerk)
    wrong = f"{(int(code_for(device, 1)) + 1) % 1000000:06d}"
    first = obtain("clerk", otp=wrong)
    assert first.status_code == 401
    assert first.json()["error"]["code"] == "auth.otp_invalid"
    assert AccessAttempt.objects.get(username="clerk").failures_since_start == 1
    assert wrong not in AccessAttempt.objects.get().post_data
    statuses = [obtain("clerk", otp=wrong).status_code for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert statuses[-1] == 429
    assert obtain("clerk", otp=code_for(device, 1)).status_code == 429  # locked out
    assert not ApiToken.objects.exists()
    first_failure = AuditEvent.objects.filter(action="auth.login_failed").earliest("id")
    assert first_failure.metadata == {"username": "clerk", "method": "otp"}


def test_a_missing_code_counts_too(db, clerk):
    enrolled(clerk)
    assert obtain("clerk").status_code == 401
    assert AccessAttempt.objects.get(username="clerk").failures_since_start == 1


@pytest.mark.parametrize("otp", ["", "x" * 64, 123456, None, "\u0661" * 6, ["123456"]])
def test_hostile_codes_are_400_or_401_never_500(db, clerk, otp):
    enrolled(clerk)
    response = obtain("clerk", otp=otp)
    assert response.status_code in (400, 401), response.content
    assert set(response.json()) == {"error"}
    assert not ApiToken.objects.exists()


def test_staff_need_a_code_while_2fa_is_required(db, clerk, make_user, settings):
    settings.ADMIN_REQUIRE_2FA = True
    refused = obtain("clerk")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "auth.otp_required"
    integration = make_user("finance_clerk", username="robot", is_staff=False)
    assert obtain(integration.username).status_code == 201
    settings.ADMIN_REQUIRE_2FA = False
    assert obtain("clerk").status_code == 201


def test_a_wrong_password_with_a_right_code_is_still_auth_failed(db, clerk):
    device, _ = enrolled(clerk)
    used_step = device.last_t
    response = APIClient().post(
        TOKEN,
        {"username": "clerk", "password": "wrong-password", "otp": code_for(device, 1)},
        format="json",
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.failed"
    device.refresh_from_db()
    assert device.last_t == used_step  # the code was never tried, so it is still good
    assert device.throttling_failure_count == 0


def test_a_database_failure_keeps_no_usable_code_in_the_error_log(db, clerk, monkeypatch):
    """A recovery code refused by a database failure (not used up) is still good: the error
    log, which auditors and operators read, must not hold it."""
    _, codes = enrolled(clerk)

    def fails(self, token):
        raise OperationalError("could not serialize access")

    with monkeypatch.context() as patched:
        patched.setattr(StaticDevice, "verify_token", fails)
        response = obtain("clerk", otp=codes[0])
    assert response.status_code == 500
    stored = json.dumps(list(ErrorEvent.objects.values("payload", "message")), default=str)
    assert "body" in stored and "clerk" in stored
    assert codes[0] not in stored and PASSWORD not in stored
    assert obtain("clerk", otp=codes[0]).status_code == 201  # the code was never used


def test_a_superuser_needs_a_code_even_without_the_staff_flag(db, make_user, settings):
    """A superuser holds every permission through the API whether or not they may open the
    admin: the staff flag must not be what lets a password alone get their token."""
    settings.ADMIN_REQUIRE_2FA = True
    make_user(username="root", is_superuser=True, is_staff=False)
    refused = obtain("root")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "auth.otp_required"
    assert not ApiToken.objects.exists()


def test_a_password_only_admin_login_does_not_wipe_counted_wrong_codes(db, clerk, settings):
    """Wrong codes at the token endpoint count towards the lockout; an admin login with the
    password alone is half a login and must not reset that count (django-axes resets it on a
    successful login), or the lockout never comes."""
    settings.ADMIN_REQUIRE_2FA = True
    enrolled(clerk)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert obtain("clerk", otp="000000").status_code == 401
    password_login(clerk)  # the admin's login page: the password, then the verify page
    statuses = [obtain("clerk", otp="000000").status_code for _ in range(2)]
    assert statuses[-1] == 429


def test_the_second_factor_completes_the_login_and_clears_the_count(db, clerk, settings):
    settings.ADMIN_REQUIRE_2FA = True
    device, _ = enrolled(clerk)
    assert obtain("clerk", otp="000000").status_code == 401
    client = password_login(clerk)
    assert AccessAttempt.objects.get(username="clerk").failures_since_start == 1
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0)
    assert client.post("/admin/2fa/verify/", {"code": code_for(device, 1)}).status_code == 302
    assert not AccessAttempt.objects.filter(username="clerk").exists()
