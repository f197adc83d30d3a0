"""Attacks on the Audit dashboard (audit/dashboard.py, audit/forms.py): hostile values."""

import pytest
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
