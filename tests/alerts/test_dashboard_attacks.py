"""Attacks on the Alerts dashboard (alerts/dashboard.py): hostile form values."""

import pytest
from django.test import Client
from django.urls import reverse

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
