"""Attacks on the Integrity dashboard (integrity/admin/dashboard.py): hostile form values."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client

pytestmark = pytest.mark.django_db

RETRY = "/admin/dashboards/integrity/retry/"


@pytest.mark.parametrize("raw", ["\u00b2", "\u00b9\u00b2", "\u2460"])
def test_a_non_ascii_digit_as_the_letter_id_is_refused_not_a_500(operator, raw):
    """'²'.isdigit() is True but int('²') raises: the id must be ASCII digits."""
    client = Client(raise_request_exception=False)
    client.force_login(operator)
    response = client.post(RETRY, {"letter": raw})
    assert response.status_code == 302
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert said == ["Choose a dead letter to retry."]
