"""The error log admin: read-only pages, triage actions through the services."""

import pytest

from monitoring.models import ErrorEvent, ErrorGroup, ErrorStatus
from monitoring.services import error_record
from tests.monitoring.factories import ErrorEventFactory
from tests.monitoring.helpers import caught, site_a

GROUPS = "/admin/monitoring/errorgroup/"
EVENTS = "/admin/monitoring/errorevent/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def group():
    return error_record(
        exc=caught(site_a, "admin"), source="other", request_id="req-admin-01"
    ).group


@pytest.fixture
def viewer(make_user):
    return make_user(permissions=["monitoring.view_errorgroup", "monitoring.view_errorevent"])


@pytest.fixture
def triager(make_user):
    return make_user(
        permissions=[
            "monitoring.view_errorgroup",
            "monitoring.change_errorgroup",
            "monitoring.view_errorevent",
        ]
    )


def test_group_list_and_detail_with_the_last_twenty_events(client, viewer, group):
    ErrorEvent.objects.all().delete()
    ErrorEvent.objects.bulk_create(
        ErrorEventFactory.build(group=group, message=f"event-{i:02d}") for i in range(25)
    )
    client.force_login(viewer)
    listing = client.get(GROUPS, {"status": "unresolved", "q": "ValueError"})
    assert listing.status_code == 200 and "tests.monitoring.helpers.fail" in listing.text
    detail = client.get(f"{GROUPS}{group.pk}/change/")
    assert detail.status_code == 200
    shown = [f"event-{i:02d}" for i in range(25) if f"event-{i:02d}" in detail.text]
    assert shown == [f"event-{i:02d}" for i in range(5, 25)]
    assert 'name="_save"' not in detail.text  # read-only


def test_triager_resolves_ignores_and_reopens_through_actions(client, triager, group):
    client.force_login(triager)
    for action, status in [
        ("resolve_groups", ErrorStatus.RESOLVED),
        ("reopen_groups", ErrorStatus.UNRESOLVED),
        ("ignore_groups", ErrorStatus.IGNORED),
    ]:
        response = client.post(GROUPS, {"action": action, "_selected_action": [group.pk]})
        assert response.status_code == 302
        group.refresh_from_db()
        assert group.status == status, action
    group.refresh_from_db()
    assert group.resolved_by == triager


def test_viewer_cannot_triage(client, viewer, group):
    client.force_login(viewer)
    listing = client.get(GROUPS)
    assert "resolve_groups" not in listing.text
    client.post(GROUPS, {"action": "resolve_groups", "_selected_action": [group.pk]})
    group.refresh_from_db()
    assert group.status == ErrorStatus.UNRESOLVED


def test_no_add_change_or_delete(client, make_user, group):
    superuser = make_user(is_superuser=True)
    client.force_login(superuser)
    event = ErrorEvent.objects.get()
    assert client.get(f"{GROUPS}add/").status_code == 403
    assert client.get(f"{EVENTS}add/").status_code == 403
    assert client.post(f"{GROUPS}{group.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"{EVENTS}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    client.post(f"{EVENTS}{event.pk}/change/", {"message": "edited"})
    event.refresh_from_db()
    assert event.message == "admin"
    assert ErrorGroup.objects.count() == 1


def test_events_are_searchable_by_request_id(client, viewer, group):
    other = error_record(exc=caught(site_a, "other"), source="other", request_id="req-other-02")
    client.force_login(viewer)
    response = client.get(EVENTS, {"q": "req-admin-01"})
    assert response.status_code == 200
    assert f"{EVENTS}{other.pk}/change/" not in response.text
    assert (
        f"{EVENTS}{ErrorEvent.objects.get(request_id='req-admin-01').pk}/change/" in response.text
    )
    detail = client.get(f"{EVENTS}{other.pk}/change/")
    assert detail.status_code == 200 and "Traceback (most recent call last)" in detail.text
