"""The suite's secrets guard (tests/secrets_guard.py) finds what it is there to find: a token,
a password or a key from the settings in a log record, an audit event or an alert. Each test
plants a secret on purpose, asks the guard, then turns it off for itself."""

import datetime
import logging

from alerts.services import raise_alert
from config import events
from config.logfilters import GunicornLogger, SecretPaths, redact_secret_paths
from config.tokens import api_token_create
from tests import secrets_guard as guard


def test_an_api_token_in_a_log_record_is_found(request, clerk):
    _, raw = api_token_create(user=clerk, name="planted")
    logging.getLogger("ledgerguard.test").warning("client sent %s", raw)
    found = guard.findings(uses_database=False)
    request.node.secrets_guard_off = True
    assert any("ledgerguard.test" in leak for leak in found), found


def test_a_password_in_an_audit_event_is_found(request, clerk):
    clerk.set_password("planted-password-1234")
    clerk.save()
    events.record(action="admin.changed", obj=clerk, metadata={"note": "planted-password-1234"})
    found = guard.findings(uses_database=True)
    request.node.secrets_guard_off = True
    assert any(leak.startswith("plan…") and "audit.AuditEvent" in leak for leak in found)


def test_a_secret_setting_in_an_alert_title_is_found(request, settings, db):
    settings.SMS_AUTH_TOKEN = "planted-sms-token-5678"
    raise_alert(source="test", key="planted", severity="info", title="token planted-sms-token-5678")
    found = guard.findings(uses_database=True)
    request.node.secrets_guard_off = True
    assert any("alerts.Alert " in leak for leak in found), found


def test_a_clean_test_has_no_findings(clerk):
    logging.getLogger("ledgerguard.test").info("nothing secret here")
    assert guard.findings(uses_database=True) == []


# The masks that the guard made necessary --------------------------------------------------------

LINK = "/alerts/ack/eyJhbGVydCI6MX0:1xZE9h:ztuYgXLyoUzNiX9Rg-gL7Rw9dV2hTL41w402tNQecKM/"


def test_signed_links_are_masked_in_django_request_records():
    args = ("Gone", LINK)
    record = logging.LogRecord("django.request", logging.WARNING, "", 0, "%s: %s", args, None)
    SecretPaths().filter(record)
    assert record.getMessage() == "Gone: /alerts/ack/[redacted]/"


def test_signed_links_are_masked_in_gunicorn_access_lines():
    class Response:
        status = "410 Gone"
        sent = 10
        headers = (("Content-Type", "text/html"),)

    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": LINK,
        "PATH_INFO": LINK,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": f"https://ledger.example{LINK}",
    }
    logger = GunicornLogger.__new__(GunicornLogger)  # atoms() reads no configuration
    atoms = logger.atoms(Response(), {}, environ, datetime.timedelta(0))
    masked = redact_secret_paths(LINK)
    assert atoms["r"] == "GET /alerts/ack/[redacted]/ HTTP/1.1"
    assert atoms["U"] == masked and atoms["f"] == f"https://ledger.example{masked}"
