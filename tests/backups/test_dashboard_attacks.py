"""Attacks on the Backups dashboard (backups/dashboard.py): hostile form values."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from backups.models import RestoreDrill

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("raw", ["\u00b2", "\u00b9\u00b2", "\u2460"])
def test_a_non_ascii_digit_as_the_backup_id_is_refused_not_a_500(operator, raw):
    """'²'.isdigit() is True but int('²') raises: the id must be ASCII digits."""
    client = Client(raise_request_exception=False)
    client.force_login(operator)
    response = client.post(reverse("admin:dashboard_backups_drill"), {"backup": raw})
    assert response.status_code == 302
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert said == ["That is not a backup's number."]
    assert not RestoreDrill.objects.exists()
