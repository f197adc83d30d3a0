"""Fixtures of the capture tests (test_capture_*.py)."""

import pytest

from audit.actions import catalogue
from audit.models import AuditEvent
from tests.audit.helpers import Trail


@pytest.fixture
def trail(db) -> Trail:
    return Trail()


@pytest.fixture
def only_catalogued_actions(db):
    """Every action written anywhere in these tests is in the catalogue the docs come from.
    The capture modules use it for every test (`pytestmark`)."""
    yield
    written = set(AuditEvent.objects.values_list("action", flat=True))
    assert written <= set(catalogue()), sorted(written - set(catalogue()))
