"""Attacks on the Alerts dashboard (alerts/dashboard.py): hostile form values."""

import pytest
from django.test import Client
from django.urls import reverse

from alerts import services
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
@pytest.mark.parametrize("raw", ["\u00b2", "\u00b9\u00b2", "\u2460"])
def test_a_non_ascii_digit_as_the_alert_id_is_refused_not_a_500(operator, action, raw):
    """'²'.isdigit() is True but int('²') raises: the id must be ASCII digits."""
    client = Client(raise_request_exception=False)
    client.force_login(operator)
    response = client.post(reverse(f"admin:dashboard_alerts_{action}"), {"alert": raw})
    assert response.status_code == 302
    said = [str(m) for m in response.wsgi_request._messages]
    assert said == ["No such alert: nothing was changed."]


def test_a_nul_in_the_resolve_note_is_refused_not_a_500(operator):
    """PostgreSQL refuses NUL in text: the note went to the database as posted (a 500 there;
    on SQLite a NUL stored in the alert's history and the audit trail)."""
    alert = services.raise_alert(source="test", key="nul", severity="error", title="T")
    client = Client(raise_request_exception=False)
    client.force_login(operator)
    response = client.post(
        reverse("admin:dashboard_alerts_resolve"), {"alert": alert.pk, "note": "fixed\x00"}
    )
    assert response.status_code == 302
    said = [str(m) for m in response.wsgi_request._messages]
    assert said == ["T: not resolved: the note cannot contain NUL characters."]
    alert.refresh_from_db()
    assert alert.is_open
    assert not AuditEvent.objects.filter(action="alert.resolved", object_id=str(alert.pk)).exists()
