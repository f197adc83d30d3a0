"""Attacks on the Audit dashboard (audit/dashboard.py, audit/forms.py): hostile values."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

# Valid ISO 8601 with an offset, but outside what a datetime holds once in UTC.
OUT_OF_RANGE = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


def _client(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_a_search_time_outside_the_utc_range_is_a_form_error_not_a_500(auditor, field, value):
    response = _client(auditor).get(reverse("admin:dashboard_audit"), {field: value})
    assert response.status_code == 200
    assert response.context["results"] is None
    assert field in response.context["search_form"].errors


@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_an_export_time_outside_the_utc_range_exports_nothing_not_a_500(auditor, field, value):
    exports = AuditEvent.objects.filter(action="audit.exported").count()
    response = _client(auditor).post(
        reverse("admin:dashboard_audit_export"), {field: value, "format": "jsonl"}
    )
    assert response.status_code == 302
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert len(said) == 1 and said[0].startswith("Nothing exported: ")
    assert AuditEvent.objects.filter(action="audit.exported").count() == exports


def test_a_reader_without_the_chains_pages_gets_no_chain_tile(make_user):
    """The page shows the chain's state only to a user who may view verifications and
    checkpoints; the Overview's chain tile (the same state, the last verification, the last
    checkpoint) must not show it to anyone else."""
    user = make_user(is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_auditevent", content_type__app_label="audit")
    )
    client = _client(user)
    assert 'id="audit-chain"' not in client.get(reverse("admin:dashboard_audit")).content.decode()
    index = client.get(reverse("admin:index")).content.decode()
    assert 'id="tile-audit-chain"' not in index
    assert "Last full verification" not in index and "Last checkpoint" not in index
    # Who holds both still gets it.
    assert 'id="tile-audit-chain"' in _client(make_user("auditor")).get("/admin/").content.decode()
