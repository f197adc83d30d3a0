"""Rows of the error log, for arranging a test's state; `.build()` where no database is needed.

An error that a test is about is recorded through `monitoring.services.error_record`, which
fingerprints and groups it; these make rows around it (a group's history, old events).
"""

import factory
from django.utils import timezone

from monitoring.models import ErrorEvent, ErrorGroup, ErrorSource


class ErrorGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ErrorGroup

    fingerprint = factory.Sequence(lambda n: f"{n:064x}")
    exception_type = "ValueError"
    message = "failed"
    culprit = "tests.monitoring.helpers.fail"
    count = 1


class ErrorEventFactory(factory.django.DjangoModelFactory):
    """One occurrence of a group, from no particular source. Build many and `bulk_create`
    them for a group's history."""

    class Meta:
        model = ErrorEvent

    group = factory.SubFactory(ErrorGroupFactory)
    occurred_at = factory.LazyFunction(timezone.now)
    source = ErrorSource.OTHER
    message = factory.SelfAttribute("group.message")
