"""Attacks on the Backups dashboard (backups/dashboard.py): hostile form values."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backups.models import RestoreDrill
from tests.backups.factories import BackupFactory, RestoreDrillFactory

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


def test_a_reader_of_backups_without_drills_learns_nothing_of_the_drills(make_user):
    """The page hides the drills' panel from a user without backups.view_restoredrill; the
    recovery panel and the Overview's tile must not tell them about the drills either."""
    now = timezone.now()
    backup = BackupFactory(started_at=now - timedelta(hours=1), verified_at=now)
    RestoreDrillFactory(
        backup=backup,
        status=RestoreDrill.Status.FAILED,
        failed_step="compare-rows",
        started_at=now - timedelta(minutes=50),
        restore_seconds=300.0,
    )
    client = Client()
    client.force_login(make_user(permissions=["backups.view_backup"]))
    for url in (reverse("admin:dashboard_backups"), reverse("admin:index")):
        page = client.get(url).content.decode()
        assert f"#{backup.pk} verified" in page or "Recovery point" in page, url
        for drill_word in ("Last drill", "restore drill", "compare-rows", "Recovery time</th>"):
            assert drill_word not in page, (url, drill_word)
