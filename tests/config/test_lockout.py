"""The login lockout keys on the client's real address behind trusted proxies: a stranger who
guesses wrong locks out only themselves, never the user at another address."""

from axes.models import AccessAttempt
from rest_framework.test import APIClient

from tests.factories import PASSWORD

TOKEN = "/api/v1/auth/token/"


def _attempt(forwarded_for: str, password: str) -> int:
    client = APIClient(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=forwarded_for)
    body = {"username": "approver", "password": password}
    return client.post(TOKEN, body, format="json").status_code


def test_behind_a_proxy_a_stranger_cannot_lock_out_the_user(db, approver, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    statuses = [_attempt("203.0.113.66", "wrong") for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401}
    assert _attempt("203.0.113.66", PASSWORD) == 429  # the guesser is locked out
    assert _attempt("198.51.100.7", PASSWORD) == 201  # the user, elsewhere, is not
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.66"}


def test_a_forwarded_entry_that_is_no_address_is_not_trusted(db, approver, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert _attempt("not-an-address", "wrong") == 401
    assert AccessAttempt.objects.get().ip_address == "127.0.0.1"
