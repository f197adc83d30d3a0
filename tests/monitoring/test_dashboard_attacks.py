"""Attacks on the Performance dashboard (monitoring/dashboard.py) and its Overview tiles."""

import pytest
from django.test import Client
from django.utils import timezone

from monitoring.models import Threshold
from tests.monitoring.test_dashboard import PAGE, traffic

pytestmark = pytest.mark.django_db


def test_a_viewer_of_requests_without_thresholds_is_not_told_of_them(make_user):
    """The page shows the thresholds only to a user with monitoring.view_threshold; the
    requests tile must not name a firing threshold, its value and its limit to anyone else."""
    traffic(timezone.now())
    Threshold.objects.filter(metric="latency_p95_ms").update(
        firing=True, severity="error", last_value=812.0
    )
    name = Threshold.objects.get(metric="latency_p95_ms").name
    client = Client()
    client.force_login(make_user(permissions=["monitoring.view_requestbucket"]))
    assert "Thresholds on these figures" not in client.get(PAGE).content.decode()
    response = client.get("/admin/")
    (tile,) = [t for t in response.context["overview_tiles"] if t.key == "performance-requests"]
    assert name not in tile.summary and "812" not in tile.summary and "firing" not in tile.summary
    assert "p95" in tile.summary
    # A reader of the thresholds still sees it firing.
    client.force_login(make_user("auditor"))
    tiles = client.get("/admin/").context["overview_tiles"]
    (tile,) = [t for t in tiles if t.key == "performance-requests"]
    assert tile.status == "bad" and "812" in tile.summary
