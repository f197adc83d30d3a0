"""Security headers, the Content Security Policy and its report endpoint, the admin's path,
the API docs setting and `check --deploy` with production settings (docs/security.md,
"Headers and Content Security Policy")."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import clear_url_caches, reverse

import config.urls
from alerts.channels import _admin_link
from alerts.models import Alert
from monitoring.models import ErrorEvent, ErrorGroup

ROOT = Path(__file__).resolve().parents[2]
CSP = "Content-Security-Policy"


def directives(response) -> dict[str, str]:
    parts = (p.strip().split(" ", 1) for p in response[CSP].split(";") if p.strip())
    return {p[0]: (p[1] if len(p) > 1 else "") for p in parts}


def assert_hardened(response) -> None:
    assert "frame-ancestors 'none'" in response[CSP]
    assert "camera=()" in response["Permissions-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


# --- headers ---------------------------------------------------------------------------------


def test_the_policy_allows_nothing_inline(client, db):
    policy = directives(client.get(reverse("admin:login")))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"  # no nonce on a page that needs none
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["base-uri"] == policy["form-action"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["report-uri"] == "/csp-report/"
    assert policy["report-to"] == "csp"
    assert "unsafe-inline" not in str(policy) and "unsafe-eval" not in str(policy)


def test_html_pages_carry_the_headers(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("admin:index"))
    assert_hardened(response)
    assert response["Reporting-Endpoints"] == 'csp="/csp-report/"'
    assert "style=" not in response.content.decode()


@pytest.mark.parametrize("path", ["/api/v1/accounts/", "/api/v1/nowhere/", "/api/schema/"])
def test_api_answers_are_never_stored_errors_included(client, db, path):
    response = client.get(path)  # 401 anonymous, 404 unknown, 200 schema
    assert "no-store" in response["Cache-Control"]
    assert_hardened(response)


def test_api_refusals_before_any_view_are_never_stored(client, db):
    response = client.get("/api/v1/accounts/", HTTP_USER_AGENT="bad\x00agent")
    assert response.status_code == 400
    assert "no-store" in response["Cache-Control"]


def test_api_success_for_a_user_is_never_stored(client, auditor):
    client.force_login(auditor)
    response = client.get("/api/v1/accounts/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_static_files_carry_the_headers(settings, db):
    settings.WHITENOISE_USE_FINDERS = True
    response = Client().get("/static/ledgerguard/admin.css")  # a new client: WhiteNoise anew
    assert response.status_code == 200
    assert_hardened(response)


def test_only_the_docs_pages_carry_a_nonce(client, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("api-docs"))
    nonce = page.wsgi_request.csp_nonce
    assert f"'nonce-{nonce}'" in directives(page)["script-src"]
    assert f'<script nonce="{nonce}">' in page.content.decode()
    assert "<style" not in page.content.decode()
    redoc = client.get(reverse("api-redoc"))
    assert "'nonce-" in directives(redoc)["style-src"]
    assert "fonts.googleapis.com" not in redoc.content.decode()


# --- the report endpoint -----------------------------------------------------------------------

REPORT = {
    "csp-report": {
        "document-uri": "https://ledger.example/admin/?token=secret-signed-link",
        "violated-directive": "style-src-attr",
        "effective-directive": "style-src-attr",
        "blocked-uri": "inline",
        "source-file": "https://ledger.example/static/x.js",
        "line-number": 3,
    }
}


def post_report(client, body, content_type="application/csp-report"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/csp-report/", data, content_type=content_type)


def test_a_report_lands_in_the_error_log_without_query_strings(client, db):
    assert post_report(client, REPORT).status_code == 204
    group = ErrorGroup.objects.get()
    assert group.exception_type == "CSPViolation[style-src-attr inline]"
    event = group.events.get()
    assert event.route == "/admin/"
    assert "secret-signed-link" not in json.dumps(event.payload) + event.message


def test_the_refusal_made_on_purpose_opens_no_error_group(client, db):
    """ReDoc's page always asks for Redocly's logo from their CDN, refused on purpose: a report
    of it is answered and not recorded, so the docs page never pages anyone."""
    logo = {
        "csp-report": {
            "document-uri": "https://ledger.example/api/redoc/",
            "effective-directive": "img-src",
            "blocked-uri": "https://cdn.redoc.ly/redoc/logo-mini.svg",
        }
    }
    assert post_report(client, logo).status_code == 204
    assert not ErrorGroup.objects.exists()


def test_the_reporting_api_format_is_read(client, db):
    body = [
        {
            "type": "csp-violation",
            "url": "https://ledger.example/api/docs/",
            "body": {
                "documentURL": "https://ledger.example/api/docs/",
                "effectiveDirective": "script-src-elem",
                "blockedURL": "https://evil.example/x.js",
            },
        },
        {"type": "deprecation", "body": {}},
    ]
    assert post_report(client, body, "application/reports+json").status_code == 204
    assert ErrorGroup.objects.get().exception_type == "CSPViolation[script-src-elem external]"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[" * 5000,
        b"{}",
        b"[]",
        b'{"csp-report": 1}',
        b"null",
        b'{"csp-report": {"effective-directive": "\\ud800", "blocked-uri": {"a": 1}}}',
    ],
)
def test_garbage_is_refused_in_the_error_shape_never_500(client, db, body):
    response = post_report(client, body)
    assert response.status_code in (204, 400, 415), response.content
    if response.status_code != 204:
        assert response.json()["error"]["code"]


def test_a_big_body_is_refused_unread(client, db, settings):
    settings.CSP_REPORT_MAX_BYTES = 1000
    big = {"csp-report": {**REPORT["csp-report"], "script-sample": "x" * 2000}}
    response = post_report(client, big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not ErrorGroup.objects.exists()


def test_other_methods_and_types_are_refused(client, db):
    assert client.get("/csp-report/").status_code == 405
    response = post_report(client, REPORT, "text/plain")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_a_flood_is_counted_not_stored(client, db, settings):
    """Made-up reports with ever new URLs and directives: a few groups, capped events."""
    settings.CSP_REPORT_EVENTS_PER_WINDOW = 5
    for i in range(60):
        body = {
            "csp-report": {
                "document-uri": f"https://x.example/{i}/",
                "effective-directive": ["script-src", "made-up-" + str(i)][i % 2],
                "blocked-uri": f"https://evil{i}.example/",
            }
        }
        assert post_report(client, body).status_code == 204
    groups = ErrorGroup.objects.all()
    assert groups.count() == 2  # script-src external, unknown external
    assert sum(g.count for g in groups) == 60
    assert ErrorEvent.objects.count() == 10


# --- the admin's path and the docs setting -----------------------------------------------------


@pytest.fixture
def admin_at_ops(settings):
    settings.ADMIN_URL = "ops-7f3a/"
    importlib.reload(config.urls)
    clear_url_caches()
    yield
    settings.ADMIN_URL = "admin/"
    importlib.reload(config.urls)
    clear_url_caches()


def test_the_admin_moves_to_admin_url(client, admin_user, admin_at_ops):
    assert client.get("/admin/").status_code == 404
    assert client.get("/").url == "/ops-7f3a/"
    login = client.get("/ops-7f3a/")
    assert login.status_code == 302 and login.url.startswith("/ops-7f3a/login/")
    client.force_login(admin_user)
    assert client.get("/ops-7f3a/").status_code == 200


def test_alert_links_follow_admin_url(db, admin_at_ops):
    alert = Alert(pk=7)
    assert "/ops-7f3a/alerts/alert/7/change/" in _admin_link(alert)


def test_docs_are_staff_only_when_not_public(client, settings, make_user, admin_user):
    settings.API_DOCS_PUBLIC = False
    assert client.get("/api/schema/").status_code in (401, 403)
    assert client.get("/api/schema/").json()["error"]["code"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 302 and reverse("admin:login") in docs.url
    assert client.get("/api/redoc/").status_code == 302
    outsider = make_user(is_staff=False)
    client.force_login(outsider)
    assert client.get("/api/schema/").status_code == 403
    assert client.get("/api/docs/").status_code == 403
    client.force_login(admin_user)
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


def test_docs_are_public_when_set(client, settings, db):
    settings.API_DOCS_PUBLIC = True
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/redoc/").status_code == 200


# --- check --deploy with production settings ---------------------------------------------------

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "production-like-" + "k3y" * 20,
    "AUDIT_SIGNING_KEY": "production-like-audit-signing-key",
    "ALERT_WEBHOOK_SECRET": "production-like-webhook-secret",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "ALLOWED_HOSTS": "ledgerguard.example",
}


def deploy_check(**changes: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("API_DOCS_PUBLIC", "DEBUG")}
    env |= PRODUCTION | changes
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_finds_nothing_with_production_settings():
    result = deploy_check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_on_a_production_gap():
    result = deploy_check(SECURE_HSTS_SECONDS="0")
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout


def test_a_browser_reading_the_api_gets_json_not_the_browsable_pages(client, make_user):
    """DRF's browsable API has inline styles and scripts the policy refuses: a browser
    opening an endpoint is answered JSON (people read the API in its docs)."""
    client.force_login(make_user("auditor"))
    browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = client.get("/api/v1/accounts/", headers={"Accept": browser_accept})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert b"<html" not in response.content
