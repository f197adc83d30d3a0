from datetime import timedelta
from io import StringIO

from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from config.models import ApiToken
from config.tokens import api_token_create
from tests.config.factories import ApiTokenFactory
from tests.config.helpers import form_data
from tests.factories import PASSWORD


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_password_exchange_returns_token_once_and_stores_only_a_hash(db, clerk):
    response = APIClient().post(
        "/api/v1/auth/token/",
        {"username": "clerk", "password": PASSWORD, "name": "ci"},
        format="json",
    )
    assert response.status_code == 201, response.content
    raw = response.json()["token"]
    token = ApiToken.objects.get()
    assert raw.startswith("lg_") and raw not in (token.digest, token.prefix)
    assert len(token.digest) == 64
    assert bearer(raw).get("/api/v1/accounts/").status_code == 200
    listed = bearer(raw).get("/api/v1/auth/tokens/").json()["results"]
    assert [t["prefix"] for t in listed] == [token.prefix]
    assert "token" not in listed[0] and "digest" not in listed[0]


def test_wrong_password_is_401_in_error_shape(db, clerk):
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "clerk", "password": "nope"}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.failed"
    assert not ApiToken.objects.exists()


def test_expired_and_revoked_tokens_are_refused(db, clerk):
    token, raw = api_token_create(user=clerk, name="t")
    client = bearer(raw)
    assert client.get("/api/v1/accounts/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = client.get("/api/v1/accounts/")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "auth.failed"

    token2, raw2 = api_token_create(user=clerk, name="t2")
    assert bearer(raw2).delete(f"/api/v1/auth/tokens/{token2.pk}/").status_code == 204
    assert bearer(raw2).get("/api/v1/accounts/").status_code == 401
    token2.refresh_from_db()
    assert token2.revoked_at is not None  # kept for the record, not deleted


def test_tokens_of_inactive_users_stop_working(db, clerk):
    _, raw = api_token_create(user=clerk, name="t")
    clerk.is_active = False
    clerk.save()
    assert bearer(raw).get("/api/v1/accounts/").status_code == 401


def test_garbage_tokens_are_401_never_500(db):
    for value in [
        "Bearer",
        "Bearer a b",
        "Bearer lg_" + "x" * 500,
        "Bearer \u00e9\u00e9",
        "Token x",
    ]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=value)
        response = client.get("/api/v1/accounts/")
        assert response.status_code == 401, value
        assert "error" in response.json()


def test_cannot_revoke_someone_elses_token(db, clerk, approver):
    token = ApiTokenFactory(user=approver, name="theirs")
    _, mine = api_token_create(user=clerk, name="mine")
    assert bearer(mine).delete(f"/api/v1/auth/tokens/{token.pk}/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_ttl_out_of_range_is_422(db, clerk):
    response = APIClient().post(
        "/api/v1/auth/token/",
        {"username": "clerk", "password": PASSWORD, "expires_in_days": 100000},
        format="json",
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "token.ttl_out_of_range"


def test_create_api_token_command_prints_a_working_token(db, clerk):
    out = StringIO()
    call_command("create_api_token", "clerk", "--days", "7", stdout=out, stderr=StringIO())
    raw = out.getvalue().strip()
    assert bearer(raw).get("/api/v1/accounts/").status_code == 200


def test_admin_revokes_token(client, db, admin_user, clerk):
    token, raw = api_token_create(user=clerk, name="t")
    client.force_login(admin_user)
    client.post("/admin/config/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert bearer(raw).get("/api/v1/accounts/").status_code == 401


# A changed password ends the tokens issued under the old one --------------------------------


def test_a_changed_password_revokes_the_users_tokens(db, clerk, approver):
    _, mine = api_token_create(user=clerk, name="laptop")
    _, other = api_token_create(user=approver, name="ci")
    clerk.set_password("a-completely-new-passphrase")
    clerk.save()
    assert bearer(mine).get("/api/v1/accounts/").status_code == 401
    assert bearer(other).get("/api/v1/accounts/").status_code == 200
    event = AuditEvent.objects.get(action="api_token.revoked")
    assert event.metadata["reason"] == "password_changed"


def test_changing_your_password_in_the_admin_revokes_your_tokens(client, db, make_user):
    user = make_user("finance_clerk", username="pat", is_staff=True)
    _, raw = api_token_create(user=user, name="script")
    client.force_login(user)
    response = client.post(
        "/admin/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "Another-long-passphrase-42",
            "new_password2": "Another-long-passphrase-42",
        },
    )
    assert response.status_code == 302
    assert bearer(raw).get("/api/v1/accounts/").status_code == 401
    assert AuditEvent.objects.filter(action="auth.password_changed").count() == 1


def test_an_admin_setting_a_password_revokes_that_users_tokens(client, db, admin_user, clerk):
    _, raw = api_token_create(user=clerk, name="script")
    client.force_login(admin_user)
    response = client.post(
        f"/admin/auth/user/{clerk.pk}/password/",
        {
            "password1": "Reset-by-the-admin-2026",
            "password2": "Reset-by-the-admin-2026",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    assert bearer(raw).get("/api/v1/accounts/").status_code == 401


def test_a_hash_upgrade_on_login_is_not_a_password_change(db, clerk, settings):
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    clerk.password = make_password(PASSWORD, hasher="md5")
    clerk.save(update_fields=["password"])
    _, raw = api_token_create(user=clerk, name="t")
    assert clerk.check_password(PASSWORD)  # rehashed with PBKDF2 and saved
    clerk.refresh_from_db()
    assert clerk.password.startswith("pbkdf2_")
    assert bearer(raw).get("/api/v1/accounts/").status_code == 200


def test_disabling_password_login_in_the_admin_revokes_the_tokens(client, db, admin_user, clerk):
    _, raw = api_token_create(user=clerk, name="script")
    client.force_login(admin_user)
    response = client.post(
        f"/admin/auth/user/{clerk.pk}/password/",
        {"usable_password": "false", "set-password": "", "unset-password": "Disable"},
    )
    assert response.status_code == 302
    clerk.refresh_from_db()
    assert not clerk.has_usable_password()
    assert bearer(raw).get("/api/v1/accounts/").status_code == 401


def test_a_deactivated_users_tokens_stay_dead_after_reactivation(client, db, admin_user, clerk):
    _, raw = api_token_create(user=clerk, name="script")
    client.force_login(admin_user)
    url = f"/admin/auth/user/{clerk.pk}/change/"
    data = form_data(client.get(url).context["adminform"].form)
    data.pop("is_active")
    assert client.post(url, data).status_code == 302
    clerk.refresh_from_db()
    assert not clerk.is_active
    clerk.is_active = True
    clerk.save(update_fields=["is_active"])
    assert bearer(raw).get("/api/v1/accounts/").status_code == 401
    assert AuditEvent.objects.filter(action="api_token.revoked", metadata__reason="deactivated")
