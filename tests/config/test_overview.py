"""The Overview (the admin index for staff): each role gets the tiles of the dashboards it may
see and nothing else, a tile in trouble says so in words, and the whole page reads a fixed
number of queries however much history there is."""

import dataclasses
import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alerts.models import Severity
from config import dashboards
from tests.alerts.factories import AlertFactory
from tests.backups.factories import BackupFactory, RestoreDrillFactory
from tests.integrity.factories import DeadLetterFactory

pytestmark = pytest.mark.django_db

TILES = re.compile(r'<article class="lg-tile lg-tile-(\w+)" aria-labelledby="tile-([\w.-]+)"')
TABS = {
    "finance_clerk": ["Financial"],
    "finance_approver": ["Financial", "Integrity"],
    "auditor": ["Financial", "Integrity", "Audit", "Performance", "Backups"],
    "operator": ["Financial", "Integrity", "Audit", "Alerts", "Performance", "Backups"],
    "admin": ["Financial", "Integrity", "Audit", "Alerts", "Performance", "Backups"],
}


@pytest.fixture
def demo(db):
    call_command("seed_demo", days=7, stdout=StringIO())


def _overview(client, user):
    client.force_login(user)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return response.content.decode()


def _tabs(html: str) -> list[str]:
    nav = html.split('<nav class="lg-dash-nav"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'aria-current="page">([^<]+)</a>|<a href="[^"]+">([^<]+)</a>', nav)


@pytest.mark.parametrize("role", TABS)
def test_each_role_gets_the_tabs_and_tiles_it_may_see(client, make_user, demo, role):
    html = _overview(client, make_user(role))
    tabs = [a or b for a, b in _tabs(html)]
    assert tabs == ["Overview", *TABS[role]]
    keys = {key for _, key in TILES.findall(html)}
    assert keys, html
    if role == "finance_clerk":  # the ledger's tiles only
        assert all(k.startswith("fin") or "approv" in k or "period" in k for k in keys), keys
    if "Alerts" not in TABS[role]:
        assert "Acknowledge" not in html
    if "Backups" not in TABS[role]:
        assert "backup" not in " ".join(keys)


def test_a_tile_in_trouble_says_so(client, make_user, demo):
    AlertFactory(source="disk", key="full", severity=Severity.CRITICAL, title="Disk full")
    html = _overview(client, make_user("operator"))
    statuses = dict((key, status) for status, key in TILES.findall(html))
    alerts_tile = [k for k in statuses if "alert" in k]
    assert alerts_tile and statuses[alerts_tile[0]] == "bad", statuses
    assert "In trouble" in html and "Disk full" in html


def test_the_overview_reads_the_same_number_of_queries_however_much_history(
    client, make_user, demo
):
    user = make_user("admin", is_superuser=True)
    client.force_login(user)
    url = reverse("admin:index")
    client.get(url)  # warm: the session, content types, the health probes' cache
    with CaptureQueriesContext(connection) as before:
        assert client.get(url).status_code == 200
    for n in range(15):
        AlertFactory(source="more", key=f"k{n}", severity=Severity.ERROR)
        DeadLetterFactory()
        RestoreDrillFactory(backup=BackupFactory())
    with CaptureQueriesContext(connection) as after:
        assert client.get(url).status_code == 200
    assert len(after) == len(before), [q["sql"][:120] for q in after.captured_queries]
    assert len(before) <= 60, len(before)


def test_a_tile_in_trouble_says_what_to_do_and_a_green_one_does_not(client, make_user, demo):
    AlertFactory(source="disk", key="full", severity=Severity.CRITICAL, title="Disk full")
    html = _overview(client, make_user("operator"))
    for article in html.split("<article ")[1:]:
        status = article.split('class="lg-tile lg-tile-', 1)[1].split('"', 1)[0]
        says = "What to do:" in article
        assert says == (status in ("warn", "bad")), article[:300]


def test_a_dashboard_whose_tiles_fail_gives_one_red_tile_and_the_rest_still_show(
    client, make_user, demo, caplog
):
    alerts = next(d for d in dashboards.registered() if d.key == "alerts")

    def broken(request):
        raise RuntimeError("a bug in a tile")

    dashboards.unregister("alerts")
    dashboards.register(dataclasses.replace(alerts, tiles=broken))
    try:
        html = _overview(client, make_user("operator"))
    finally:
        dashboards.unregister("alerts")
        dashboards.register(alerts)
    statuses = dict((key, status) for status, key in TILES.findall(html))
    assert statuses.pop("alerts-unreadable") == "bad"
    assert any(k.startswith("finance-") for k in statuses)  # the other dashboards' tiles
    assert "could not be read" in html
    assert "a bug in a tile" in caplog.text and "a bug in a tile" not in html


def test_seed_demo_writes_the_roles_again_on_a_flushed_database():
    """`flush` (and a transactional test's teardown) removes the roles the migration wrote;
    the demo's users must still get theirs."""
    Group.objects.all().delete()
    call_command("seed_demo", days=7, stdout=StringIO())
    operator = get_user_model().objects.get(username="operator")
    assert list(operator.groups.values_list("name", flat=True)) == ["operator"]
