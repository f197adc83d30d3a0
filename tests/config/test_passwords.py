"""Passwords: at least PASSWORD_MIN_LENGTH (12) characters, common and similar ones refused,
hashed with Argon2, and older hashes rewritten as Argon2 at the next login."""

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import PASSWORD


def codes(password: str, user=None) -> set[str]:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        return {e.code for e in exc.error_list}
    return set()


def test_the_production_hashers_put_argon2_first():
    hashers = django_settings.PASSWORD_HASHERS
    assert hashers[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert "django.contrib.auth.hashers.PBKDF2PasswordHasher" in hashers[1:]


def test_a_new_password_is_hashed_with_argon2(db, clerk):
    clerk.set_password("a-long-enough-passphrase")
    clerk.save()
    clerk.refresh_from_db()
    assert clerk.password.startswith("argon2$argon2id$")


@pytest.fixture
def pbkdf2_clerk(clerk):
    clerk.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    clerk.save(update_fields=["password"])
    return clerk


def test_an_old_pbkdf2_hash_is_upgraded_at_admin_login(db, pbkdf2_clerk):
    response = Client().post("/admin/login/", {"username": "clerk", "password": PASSWORD})
    assert response.status_code == 302
    pbkdf2_clerk.refresh_from_db()
    assert pbkdf2_clerk.password.startswith("argon2$")
    assert pbkdf2_clerk.check_password(PASSWORD)


def test_an_old_pbkdf2_hash_is_upgraded_at_the_token_endpoint(db, pbkdf2_clerk):
    body = {"username": "clerk", "password": PASSWORD}
    response = APIClient().post("/api/v1/auth/token/", body, format="json")
    assert response.status_code == 201
    pbkdf2_clerk.refresh_from_db()
    assert pbkdf2_clerk.password.startswith("argon2$")
    # The upgrade is no password change: the new token works.
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert bearer.get("/api/v1/auth/tokens/").status_code == 200


def test_passwords_shorter_than_twelve_characters_are_refused(db, clerk):
    assert django_settings.PASSWORD_MIN_LENGTH == 12
    assert "password_too_short" in codes("Kx9#mQ2$vL4")  # 11
    assert codes("Kx9#mQ2$vL4z") == set()  # 12


def test_common_and_similar_passwords_are_refused(db, clerk):
    assert "password_too_common" in codes("password1234")
    clerk.email = "maximilian.clerkenwell@example.com"
    assert "password_too_similar" in codes("maximilian.clerkenwell", clerk)


def test_the_admin_refuses_a_short_password(client, db, admin_user, clerk):
    client.force_login(admin_user)
    before = clerk.password
    response = client.post(
        f"/admin/auth/user/{clerk.pk}/password/",
        {"password1": "Kx9#mQ2$vL4", "password2": "Kx9#mQ2$vL4", "usable_password": "true"},
    )
    assert response.status_code == 200
    assert "at least 12 characters" in response.content.decode()
    clerk.refresh_from_db()
    assert clerk.password == before
