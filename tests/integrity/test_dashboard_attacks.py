"""Attacks on the Integrity dashboard (integrity/admin/dashboard.py): hostile form values."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from tests.integrity.factories import FindingFactory

pytestmark = pytest.mark.django_db

URL = "/admin/dashboards/integrity/"
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


def test_a_viewer_of_check_runs_without_findings_is_not_told_of_them(make_user):
    """The page shows the findings only to a user with integrity.view_finding; the checks tile
    must not count them (by severity, open and explained) for anyone else."""
    FindingFactory(severity="error")
    client = Client()
    client.force_login(make_user(permissions=["integrity.view_checkrun"]))
    assert client.get(URL).context.get("show_findings") is None
    tiles = client.get("/admin/").context["overview_tiles"]
    (tile,) = [t for t in tiles if t.key == "integrity-checks"]
    assert not [label for label, _ in tile.rows if "finding" in label.lower()]
    assert "finding" not in tile.summary
    # A reader of findings still gets the counts.
    client.force_login(make_user("auditor"))
    tiles = client.get("/admin/").context["overview_tiles"]
    (tile,) = [t for t in tiles if t.key == "integrity-checks"]
    assert ("Open findings: error", "1 open, 0 explained") in tile.rows
