import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import Group

from config.roles import ROLE_PERMISSIONS

ROOT = Path(__file__).resolve().parents[2]


def test_refuses_to_start_without_secret_key_when_debug_off(tmp_path):
    # DEBUG=0 said, since `make run` may have marked this checkout for local use (DEBUG on
    # unless set); tests/config/test_local_use.py covers an unset DEBUG in a fresh copy.
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"} | {"DEBUG": "0"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_roles_are_groups_with_their_permissions(db):
    for role, perms in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role)
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert set(perms) <= granted, (role, set(perms) - granted)
    auditor = {p.codename for p in Group.objects.get(name="auditor").permissions.all()}
    # Auditors read, export and verify the audit trail; they change nothing.
    assert all(c.startswith("view_") for c in auditor - {"export_auditevent", "verify_auditevent"})


def test_openapi_schema_and_offline_docs(client, admin_user):
    client.force_login(admin_user)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/entries/{id}/approve/" in text and "bearerAuth" in text
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    # Served from our static files (sidecar), not a CDN: the docs work without internet.
    assert "cdn" not in html.lower() and "/static/drf_spectacular_sidecar/" in html


@pytest.mark.parametrize("path", ["/api/v1/entries/", "/api/v1/accounts/1/statement/"])
def test_unauthenticated_errors_have_the_shape(client, db, path):
    response = client.get(path)
    assert response.status_code in (401, 403)
    assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_request_id_is_echoed(client, db):
    response = client.get("/api/v1/entries/", HTTP_X_REQUEST_ID="abc123def456")
    assert response["X-Request-ID"] == "abc123def456"
    response = client.get("/api/v1/entries/", HTTP_X_REQUEST_ID="<script>")
    assert response["X-Request-ID"] != "<script>"


def test_schema_documents_errors_and_idempotency_key(client, db):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    create = schema["paths"]["/api/v1/entries/"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in create["parameters"]]
    assert create["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


def test_unknown_api_path_is_json_404_even_with_debug(client, db, settings):
    settings.DEBUG = True
    response = client.get("/api/v1/nope/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_oversized_body_is_413_not_500(client, db, clerk, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client.force_login(clerk)
    response = client.post(
        "/api/v1/entries/", data="{" + " " * 5000 + "}", content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
