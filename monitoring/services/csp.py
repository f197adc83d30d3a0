"""Content Security Policy violations into the error log (monitoring.cspreports reads them).

Each violation is an error group by directive and kind of thing blocked
(`CSPViolation[script-src-elem inline]`): a new group alerts like any new error. Anyone can
post reports, so writing is bounded twice: groups come only from fixed sets of values, and a
group stores at most CSP_REPORT_EVENTS_PER_WINDOW events per CSP_REPORT_WINDOW_MINUTES; past
that its count still grows, and nothing else is written.
"""

from datetime import timedelta

from django.conf import settings

from monitoring.cspreports import Violation
from monitoring.models import ErrorSource
from monitoring.services.errors import error_record


def csp_violation_record(*, violations: list[Violation]) -> int:
    """Record the violations of one report request; returns how many stored an event."""
    limit = (
        settings.CSP_REPORT_EVENTS_PER_WINDOW,
        timedelta(minutes=settings.CSP_REPORT_WINDOW_MINUTES),
    )
    stored = 0
    for violation in violations:
        event = error_record(
            source=ErrorSource.REQUEST,
            exc_type=violation.group_name,
            message=violation.describe(),
            route=violation.document_path,
            payload=violation.as_payload(),
            event_limit=limit,
        )
        stored += event is not None
    return stored
