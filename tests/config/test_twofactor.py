"""Staff's second factor through the real views: enrolment, login and verification, wrong
codes throttled, recovery codes single-use, the admin's reset, and no secret in the trail."""

import base64
import json
import logging
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from config.twofactor.services import totp_device_confirm, totp_device_start
from monitoring.models import ErrorEvent
from tests.factories import PASSWORD

ADMIN = "/admin/"
VERIFY = "/admin/2fa/verify/"
ENROL = "/admin/2fa/enrol/"
CODES = "/admin/2fa/recovery-codes/"


@pytest.fixture(autouse=True)
def _required(settings):
    settings.ADMIN_REQUIRE_2FA = True


def code_for(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """The code the user's app shows, `steps_ahead` time steps later (a step already used is
    refused, and the device accepts one step either side)."""
    value = totp(device.bin_key, step=device.step, t0=device.t0 - steps_ahead * device.step)
    return f"{value:06d}"


def password_login(user) -> Client:
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": user.username, "password": PASSWORD, "next": ADMIN},
    )
    assert response.status_code == 302, response.content
    return client


def enrolled(user) -> tuple[TOTPDevice, list[str]]:
    device = totp_device_start(user=user)
    result, codes = totp_device_confirm(user=user, code=code_for(device))
    assert result.ok
    device.refresh_from_db()
    return device, codes


def trail() -> str:
    events = AuditEvent.objects.values("action", "changes", "metadata", "object_repr")
    return json.dumps(list(events), default=str)


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def assert_no_inline_script_or_style(html: str) -> None:
    assert 'style="' not in html and "<style" not in html
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag, tag


def test_staff_without_a_device_enrol_end_to_end(db, clerk, caplog):
    caplog.set_level(logging.DEBUG)
    client = password_login(clerk)
    response = client.get("/admin/finance/account/")
    assert response.status_code == 302
    assert response["Location"].startswith(ENROL + "?next=")

    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert_no_inline_script_or_style(html)
    assert 'src="data:image/svg+xml' in html
    device = TOTPDevice.objects.get(user=clerk, confirmed=False)
    key_text = "".join(page.context["key_groups"])
    assert key_text in html.replace("</span><span>", "")
    assert client.get(ENROL).context["key_groups"] == page.context["key_groups"]  # same key

    done = client.post(ENROL, {"code": code_for(device), "next": "/admin/finance/account/"})
    assert done.status_code == 200
    codes = done.context["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(code in done.content.decode() for code in codes)
    assert_no_inline_script_or_style(done.content.decode())
    device.refresh_from_db()
    assert device.confirmed
    assert StaticToken.objects.filter(device__user=clerk).count() == 10
    assert client.get("/admin/finance/account/").status_code == 200

    assert {"auth.otp_enrolled", "auth.otp_recovery_codes_generated"} <= set(actions())
    secrets = [device.key, key_text, *codes, *(c.replace("-", "") for c in codes)]
    everything = trail() + caplog.text
    assert not [s for s in secrets if s.lower() in everything.lower()]
    stored = set(StaticToken.objects.values_list("token", flat=True))
    assert not stored & {c.replace("-", "") for c in codes}  # only digests are stored


def test_a_password_alone_never_adds_a_device_to_an_enrolled_user(db, clerk):
    enrolled(clerk)
    client = password_login(clerk)
    response = client.get(ENROL)
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)
    assert not TOTPDevice.objects.filter(user=clerk, confirmed=False).exists()
    assert client.get(CODES)["Location"].startswith(VERIFY)
    assert client.post(CODES).status_code == 302
    assert StaticToken.objects.filter(device__user=clerk).count() == 10


def test_a_key_shown_to_one_session_never_becomes_another_sessions_authenticator(db, clerk):
    # Someone with the password alone opens the enrolment page and keeps its key without
    # confirming it; later the user (perhaps after changing that password) enrols.
    thief = password_login(clerk)
    stolen = thief.get(ENROL).context["key_groups"]
    victim = password_login(clerk)
    page = victim.get(ENROL)
    assert page.context["key_groups"] != stolen
    assert victim.get(ENROL).context["key_groups"] == page.context["key_groups"]  # reloads
    device = TOTPDevice.objects.get(user=clerk, confirmed=False)
    assert victim.post(ENROL, {"code": code_for(device)}).status_code == 200
    assert TOTPDevice.objects.get(user=clerk).key == device.key
    # The thief's page now confirms nothing, not even with a code from the user's key.
    refused = thief.post(ENROL, {"code": code_for(device, 1)})
    assert refused.status_code == 302 and refused["Location"].startswith(VERIFY)
    assert thief.get(ADMIN).status_code == 302


def test_a_stale_enrolment_page_confirms_only_its_own_key(db, clerk):
    first = password_login(clerk)
    first.get(ENROL)
    second = password_login(clerk)
    second.get(ENROL)  # replaces the first session's pending key
    newest = TOTPDevice.objects.get(user=clerk, confirmed=False)
    stale = first.post(ENROL, {"code": code_for(newest)})
    assert stale.status_code == 400 and "Add the key below" in stale.context["error"]
    assert not TOTPDevice.objects.filter(user=clerk, confirmed=True).exists()
    shown = TOTPDevice.objects.get(user=clerk, confirmed=False)  # a new key, for this page
    assert shown.key != newest.key
    assert "".join(stale.context["key_groups"]) in base64.b32encode(shown.bin_key).decode()
    assert first.post(ENROL, {"code": code_for(shown)}).status_code == 200


def test_login_then_verify_with_the_app(db, clerk):
    device, _ = enrolled(clerk)
    client = password_login(clerk)
    response = client.get("/admin/finance/account/?q=cash")
    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY)
    assert client.get(response["Location"]).status_code == 200
    before = client.session.session_key

    verified = client.post(VERIFY, {"code": code_for(device, 1), "next": "/admin/?x=1"})
    assert verified.status_code == 302 and verified["Location"] == "/admin/?x=1"
    assert client.session.session_key != before  # a new key for the verified session
    assert client.get(ADMIN).status_code == 200
    event = AuditEvent.objects.filter(action="auth.otp_verified").latest("id")
    assert event.metadata["method"] == "totp" and event.metadata["purpose"] == "admin"
    assert event.actor_id == clerk.pk


def test_verify_refuses_a_foreign_next_url(db, clerk):
    device, _ = enrolled(clerk)
    client = password_login(clerk)
    response = client.post(VERIFY, {"code": code_for(device, 1), "next": "https://evil.example/"})
    assert response["Location"] == ADMIN


def test_wrong_codes_are_throttled_and_recorded(db, clerk):
    device, _ = enrolled(clerk)
    client = password_login(clerk)
    wrong = f"{(int(code_for(device, 1)) + 1) % 1000000:06d}"
    refused = client.post(VERIFY, {"code": wrong})
    assert refused.status_code == 400
    assert "not right" in refused.context["error"]
    # Right away, even the right code waits: the device's throttle (django-otp) is on.
    throttled = client.post(VERIFY, {"code": code_for(device, 1)})
    assert throttled.status_code == 400
    assert "Try again in" in throttled.context["error"]
    assert client.get(ADMIN).status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    failed = AuditEvent.objects.filter(action="auth.otp_failed").order_by("id")
    assert [e.metadata["reason"] for e in failed] == ["invalid", "throttled"]
    assert wrong not in trail()


def test_garbage_codes_are_refused_without_a_500(db, clerk):
    enrolled(clerk)
    client = password_login(clerk)
    for code in ("", "x" * 64, "12345", "\u0661" * 6, "<script>", "' OR 1=1 --", "1" * 200):
        response = client.post(VERIFY, {"code": code})
        assert response.status_code in (200, 400), code
    assert client.get(ADMIN).status_code == 302


def test_a_recovery_code_works_once(db, clerk):
    _, codes = enrolled(clerk)
    first = password_login(clerk)
    assert first.post(VERIFY, {"code": codes[3].upper()}).status_code == 302
    assert first.get(ADMIN).status_code == 200
    event = AuditEvent.objects.get(action="auth.otp_recovery_code_used")
    assert event.metadata["remaining"] == 9

    second = password_login(clerk)
    again = second.post(VERIFY, {"code": codes[3]})
    assert again.status_code == 400
    assert second.get(ADMIN).status_code == 302


def test_new_recovery_codes_replace_the_old_ones(db, clerk):
    device, old = enrolled(clerk)
    client = password_login(clerk)
    client.post(VERIFY, {"code": code_for(device, 1)})
    page = client.get(CODES)
    assert page.status_code == 200 and page.context["remaining"] == 10
    new = client.post(CODES).context["codes"]
    assert len(new) == 10 and not set(new) & set(old)
    other = password_login(clerk)
    assert other.post(VERIFY, {"code": old[0]}).status_code == 400
    StaticDevice.objects.filter(user=clerk).update(throttling_failure_count=0)
    assert other.post(VERIFY, {"code": new[0]}).status_code == 302
    assert actions().count("auth.otp_recovery_codes_generated") == 2


def test_an_unverified_session_reaches_nothing_through_the_api(db, clerk):
    client = password_login(clerk)
    assert client.get("/api/v1/accounts/").status_code in (401, 403)
    client.get(ENROL)
    client.post(ENROL, {"code": code_for(TOTPDevice.objects.get(user=clerk))})
    assert client.get("/api/v1/accounts/").status_code == 200


def test_the_setting_off_still_asks_an_enrolled_user(db, clerk, approver, settings):
    settings.ADMIN_REQUIRE_2FA = False
    assert password_login(approver).get(ADMIN).status_code == 200
    enrolled(clerk)
    assert password_login(clerk).get(ADMIN)["Location"].startswith(VERIFY)


# The admin's reset ------------------------------------------------------------------------


def reset_action(client: Client, *users):
    return client.post(
        "/admin/auth/user/",
        {"action": "reset_second_factor", "_selected_action": [u.pk for u in users]},
    )


def test_an_admin_resets_a_clerks_device_and_the_clerk_enrols_again(db, admin_user, clerk):
    enrolled(clerk)
    clerk_client = password_login(clerk)
    enrolled(admin_user)
    admin = Client()
    admin.force_login(admin_user)
    admin.post(VERIFY, {"code": code_for(TOTPDevice.objects.get(user=admin_user), 1)})

    assert reset_action(admin, clerk).status_code == 302
    assert not TOTPDevice.objects.filter(user=clerk).exists()
    assert not StaticDevice.objects.filter(user=clerk).exists()
    event = AuditEvent.objects.get(action="auth.otp_reset")
    assert event.actor_id == admin_user.pk and event.object_id == str(clerk.pk)
    assert event.metadata["authenticators"] == 1 and event.metadata["recovery_code_sets"] == 1
    assert clerk_client.get(ADMIN)["Location"].startswith(ENROL)


def test_a_reset_ends_the_verified_session(db, admin_user, clerk, settings):
    settings.ADMIN_REQUIRE_2FA = False
    device, _ = enrolled(clerk)
    clerk_client = password_login(clerk)
    clerk_client.post(VERIFY, {"code": code_for(device, 1)})
    assert clerk_client.get(ADMIN).status_code == 200
    admin = Client()
    admin.force_login(admin_user)
    reset_action(admin, clerk)
    settings.ADMIN_REQUIRE_2FA = True
    assert clerk_client.get(ADMIN)["Location"].startswith(ENROL)


@pytest.mark.parametrize("whom", ["superuser", "self"])
def test_an_admin_cannot_reset_a_superuser_or_themselves(db, admin_user, make_user, settings, whom):
    settings.ADMIN_REQUIRE_2FA = False
    target = make_user(username="root", is_superuser=True) if whom == "superuser" else admin_user
    enrolled(target)
    admin = Client()
    admin.force_login(admin_user)
    if whom == "self":
        admin.post(VERIFY, {"code": code_for(TOTPDevice.objects.get(user=admin_user), 1)})
    response = reset_action(admin, target)
    assert response.status_code == 302
    assert TOTPDevice.objects.filter(user=target, confirmed=True).exists()
    assert "auth.otp_reset" not in actions()


def test_a_superuser_resets_a_superuser_from_the_command_line(db, make_user):
    root = make_user(username="root", is_superuser=True)
    enrolled(root)
    out = StringIO()
    call_command("reset_otp", "root", "--reason", "lost phone", stdout=out)
    assert "Reset 2 device(s)" in out.getvalue()
    assert not TOTPDevice.objects.filter(user=root).exists()
    event = AuditEvent.objects.get(action="auth.otp_reset")
    assert event.actor_id is None and event.metadata["reason"] == "lost phone"


def test_a_failure_on_the_verify_page_keeps_no_usable_code_in_the_error_log(db, clerk, monkeypatch):
    _, codes = enrolled(clerk)
    client = password_login(clerk)
    client.raise_request_exception = False

    def fails(self, token):
        raise OperationalError("could not serialize access")

    with monkeypatch.context() as patched:
        patched.setattr(StaticDevice, "verify_token", fails)
        assert client.post(VERIFY, {"code": codes[0], "next": "/admin/x/"}).status_code == 500
    stored = json.dumps(list(ErrorEvent.objects.values("payload")), default=str)
    assert "/admin/x/" in stored  # the rest of the form is kept
    assert codes[0] not in stored
    assert client.post(VERIFY, {"code": codes[0]}).status_code == 302


def test_wrong_enrolment_codes_cannot_grow_the_trail_at_will(db, clerk, settings):
    """A pending key's throttle starts afresh with every new key, and two sessions holding only
    the password can make new keys at will: their wrong codes stay within the repeat bounds."""
    sessions = [password_login(clerk), password_login(clerk)]
    for _ in range(4):
        for client in sessions:
            client.get(ENROL)  # a new key for this session, voiding the other's
            assert client.post(ENROL, {"code": "000000"}).status_code == 400
    failed = AuditEvent.objects.filter(action="auth.otp_failed").count()
    assert 0 < failed <= settings.AUDIT_REPEAT_LIMIT


@pytest.mark.parametrize(
    "url",
    [
        "/admin/password_change/",
        "/admin/jsi18n/",
        "/admin/autocomplete/?app_label=finance&model_name=journalline&field_name=account",
        "/admin/auth/user/{pk}/history/",
        "/admin/auth/user/{pk}/password/",
        "/admin/finance/account/add/",
        "/admin/audit/auditevent/verify/",
        "/admin/backups/backup/take/",
        "/admin/no-such-page/",
    ],
)
def test_a_password_alone_reaches_no_other_admin_page(db, admin_user, clerk, url):
    """Every admin page, JSON view and action page, GET and POST, sends an unverified session
    to the verify page before the view runs."""
    enrolled(admin_user)
    client = password_login(admin_user)
    url = url.format(pk=clerk.pk)
    for response in (client.get(url), client.post(url, {"old_password": PASSWORD})):
        assert response.status_code == 302, (url, response.status_code)
        assert response["Location"].startswith(VERIFY), response["Location"]
    assert not AuditEvent.objects.filter(action__startswith="backup").exists()
