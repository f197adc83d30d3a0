"""Signed-in sessions: they expire when idle and at their absolute lifetime, users see and end
their other sessions (admin page and API), a changed password ends the others, and the store
never holds a session key that would log anyone in."""

import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from config.models import UserSession
from config.sessions import SESSION_META
from config.sessionstore import session_digest
from tests.factories import PASSWORD

SESSIONS = "/api/v1/auth/sessions/"
NEW_PASSWORD = "a-quite-different-passphrase-41"


def _browser(user_agent: str, address: str) -> Client:
    return Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=address)


def _login(client: Client, username: str, password: str = PASSWORD) -> None:
    """The admin's real login form, as a browser sends it."""
    response = client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": password}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/", response.content


def _logged_in(client: Client) -> bool:
    response = client.get("/admin/")
    return response.status_code == 200


def _age_session(client: Client, **seconds_ago: int) -> None:
    """Move the session's start or last activity back in time, as the store holds them."""
    session = client.session
    meta = dict(session[SESSION_META])
    now = int(time.time())
    for name, ago in seconds_ago.items():
        meta[name] = now - ago
    session[SESSION_META] = meta
    session.save()


@pytest.fixture
def laptop(clerk):
    client = _browser("Laptop Firefox", "198.51.100.10")
    _login(client, "clerk")
    return client


@pytest.fixture
def phone(clerk):
    client = _browser("Phone Safari", "203.0.113.20")
    _login(client, "clerk")
    return client


def test_a_login_is_listed_with_its_address_and_browser(laptop, phone):
    body = laptop.get(SESSIONS).json()
    rows = {row["user_agent"]: row for row in body["results"]}
    assert set(rows) == {"Laptop Firefox", "Phone Safari"}
    assert rows["Laptop Firefox"]["current"] is True
    assert rows["Phone Safari"]["current"] is False
    assert rows["Phone Safari"]["ip"] == "203.0.113.20"
    assert {"created_at", "last_seen_at", "id"} <= set(rows["Laptop Firefox"])


def test_the_store_keeps_only_a_hash_of_the_session_key(laptop):
    key = laptop.cookies["sessionid"].value
    assert not Session.objects.filter(session_key=key).exists()
    assert Session.objects.filter(session_key=session_digest(key)).exists()
    assert UserSession.objects.filter(digest=session_digest(key)).exists()
    assert not UserSession.objects.filter(digest=key).exists()


def test_ending_another_session_logs_it_out_at_once_and_is_audited(laptop, phone):
    other = next(r for r in laptop.get(SESSIONS).json()["results"] if not r["current"])
    phone_key = phone.cookies["sessionid"].value
    response = laptop.delete(f"{SESSIONS}{other['id']}/")
    assert response.status_code == 204
    assert not _logged_in(phone)
    assert _logged_in(laptop)
    event = AuditEvent.objects.get(action="auth.session_ended")
    assert event.metadata["reason"] == "ended_by_user"
    assert event.metadata["session"] == other["id"]
    assert phone_key not in str(event.metadata)


def test_the_session_asking_is_not_ended_by_delete(laptop, phone):
    own = next(r for r in laptop.get(SESSIONS).json()["results"] if r["current"])
    response = laptop.delete(f"{SESSIONS}{own['id']}/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "session.current"
    assert _logged_in(laptop) and _logged_in(phone)


def test_nobody_sees_or_ends_another_users_sessions(laptop, make_user):
    make_user("auditor", username="nosy")
    nosy = _browser("Nosy", "192.0.2.7")
    _login(nosy, "nosy")
    clerk_session = UserSession.objects.get(user_agent="Laptop Firefox")
    listed = nosy.get(SESSIONS).json()["results"]
    assert [r["user_agent"] for r in listed] == ["Nosy"]
    assert nosy.delete(f"{SESSIONS}{clerk_session.pk}/").status_code == 404
    page = nosy.get("/admin/my-sessions/").content.decode()
    assert "Laptop Firefox" not in page
    assert nosy.post(f"/admin/my-sessions/{clerk_session.pk}/end/").status_code == 302
    assert _logged_in(laptop)
    assert not AuditEvent.objects.filter(action="auth.session_ended").exists()


def test_end_all_others_keeps_only_the_one_asking(clerk, laptop, phone):
    tablet = _browser("Tablet", "192.0.2.30")
    _login(tablet, "clerk")
    response = laptop.post(f"{SESSIONS}end-others/")
    assert response.status_code == 200 and response.json() == {"ended": 2}
    assert _logged_in(laptop)
    assert not _logged_in(phone) and not _logged_in(tablet)
    assert list(UserSession.objects.values_list("user_agent", flat=True)) == ["Laptop Firefox"]


def test_with_a_token_end_others_ends_every_session(api, clerk, laptop, phone):
    response = api.as_user(clerk).post(f"{SESSIONS}end-others/")
    assert response.json() == {"ended": 2}
    assert not _logged_in(laptop) and not _logged_in(phone)


@pytest.mark.parametrize("path", [f"{SESSIONS}abc/", f"{SESSIONS}-1/", f"{SESSIONS}99999999/"])
def test_hostile_ids_are_a_json_404(laptop, path):
    response = laptop.delete(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_anonymous_clients_get_no_session_list(db):
    response = Client().get(SESSIONS)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.not_authenticated"


# Lifetimes ----------------------------------------------------------------------------------


def test_an_idle_session_goes_back_to_the_login_page(laptop, settings):
    _age_session(laptop, seen=settings.SESSION_IDLE_TIMEOUT_MINUTES * 60 + 1)
    response = laptop.get("/admin/finance/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert not _logged_in(laptop)
    event = AuditEvent.objects.get(action="auth.session_expired")
    assert event.metadata == {"reason": "idle"}
    assert not UserSession.objects.filter(user_agent="Laptop Firefox").exists()


def test_a_session_past_its_absolute_lifetime_ends_even_when_busy(laptop, settings):
    _age_session(laptop, started=settings.SESSION_MAX_AGE_HOURS * 3600 + 1, seen=5)
    response = laptop.get(SESSIONS)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.session_expired"
    assert AuditEvent.objects.get(action="auth.session_expired").metadata == {"reason": "max_age"}
    assert laptop.get(SESSIONS).json()["error"]["code"] == "auth.not_authenticated"


def test_the_timeouts_come_from_the_settings(laptop, settings):
    settings.SESSION_IDLE_TIMEOUT_MINUTES = 5
    _age_session(laptop, seen=4 * 60)
    assert _logged_in(laptop)
    _age_session(laptop, seen=5 * 60 + 1)
    assert not _logged_in(laptop)


def test_activity_is_written_at_most_once_a_minute(laptop):
    a_while_ago = timezone.now() - timedelta(seconds=50)
    UserSession.objects.update(last_seen_at=a_while_ago)
    _age_session(laptop, seen=50)
    laptop.get(SESSIONS)
    assert UserSession.objects.get().last_seen_at == a_while_ago  # within the minute: no write
    _age_session(laptop, seen=61)
    laptop.get(SESSIONS)
    assert UserSession.objects.get().last_seen_at > timezone.now() - timedelta(seconds=5)


def test_activity_keeps_a_session_alive(laptop, settings):
    idle = settings.SESSION_IDLE_TIMEOUT_MINUTES * 60
    _age_session(laptop, seen=idle - 30)
    assert _logged_in(laptop)  # activity noted now
    assert int(time.time()) - laptop.session[SESSION_META]["seen"] < 5


# Password changes -----------------------------------------------------------------------------


def test_changing_ones_password_ends_the_other_sessions(clerk, laptop, phone):
    phone_key = phone.cookies["sessionid"].value
    response = laptop.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert _logged_in(laptop)
    assert not _logged_in(phone)
    assert not Session.objects.filter(session_key=session_digest(phone_key)).exists()
    # The laptop's key was cycled by the change: the list follows it.
    assert [r["current"] for r in laptop.get(SESSIONS).json()["results"]] == [True]
    ended = AuditEvent.objects.get(action="auth.session_ended")
    assert ended.metadata["reason"] == "password_changed"


def test_an_admin_setting_a_password_ends_every_session_of_that_user(
    clerk, laptop, phone, admin_user
):
    boss = _browser("Boss", "192.0.2.1")
    _login(boss, "boss")
    response = boss.post(
        f"/admin/auth/user/{clerk.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content
    assert not _logged_in(laptop) and not _logged_in(phone)
    assert _logged_in(boss)
    assert AuditEvent.objects.filter(action="auth.session_ended").count() == 2


def test_set_password_anywhere_ends_the_sessions(clerk, laptop):
    user = get_user_model().objects.get(pk=clerk.pk)
    user.set_password(NEW_PASSWORD)
    user.save()
    assert not _logged_in(laptop)


# The admin page -------------------------------------------------------------------------------


def test_the_admin_page_lists_and_ends_sessions(clerk, laptop, phone):
    index = laptop.get("/admin/").content.decode()
    assert 'href="/admin/my-sessions/"' in index  # in the user tools
    page = laptop.get("/admin/my-sessions/").content.decode()
    assert "Laptop Firefox" in page and "Phone Safari" in page and "This session" in page
    # A strict CSP allows no inline styles or scripts: the page's styles are a static file.
    assert "<style" not in page and " style=" not in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert "config/sessions.css" in page
    phone_row = UserSession.objects.get(user_agent="Phone Safari")
    response = laptop.post(f"/admin/my-sessions/{phone_row.pk}/end/")
    assert response.status_code == 302
    assert not _logged_in(phone)
    tablet = _browser("Tablet", "192.0.2.30")
    _login(tablet, "clerk")
    laptop.post("/admin/my-sessions/end-others/")
    assert not _logged_in(tablet) and _logged_in(laptop)
    assert laptop.get("/admin/my-sessions/end-others/").status_code == 405


def test_logout_removes_the_session_from_the_list(laptop, phone):
    phone.post("/admin/logout/")
    assert list(UserSession.objects.values_list("user_agent", flat=True)) == ["Laptop Firefox"]
