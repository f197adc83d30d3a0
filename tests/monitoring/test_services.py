from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config import context
from monitoring.models import ErrorEvent, ErrorGroup, ErrorSource, ErrorStatus
from monitoring.services import (
    error_group_ignore,
    error_group_reopen,
    error_group_resolve,
    error_log_purge,
    error_record,
)
from monitoring.services import errors as services
from monitoring.tasks import purge_error_log
from tests.monitoring.factories import ErrorEventFactory
from tests.monitoring.helpers import caught, site_a, site_b

pytestmark = pytest.mark.django_db


def record(site=site_a, message="failed", **kwargs):
    kwargs.setdefault("source", ErrorSource.OPERATION)
    return error_record(exc=caught(site, message), **kwargs)


def test_two_occurrences_are_one_group_with_count_two():
    first = record(message="invoice 1")
    second = record(message="invoice 2")
    group = ErrorGroup.objects.get()
    assert first.group_id == second.group_id == group.pk
    assert group.count == 2 and group.message == "invoice 2"
    assert group.exception_type == "ValueError"
    assert group.culprit == "tests.monitoring.helpers.fail"
    assert group.status == ErrorStatus.UNRESOLVED
    assert group.first_seen == first.occurred_at and group.last_seen == second.occurred_at
    record(site_b)
    assert ErrorGroup.objects.count() == 2


def test_operation_call_stores_its_context(make_user):
    user = make_user(username="op")
    event = error_record(
        exc=caught(site_a, "refused card 4111 1111 1111 1111"),
        source="operation",
        operation_name="invoice.settle",
        payload={"invoice": 7, "password": "p"},
        user=user,
    )
    event.refresh_from_db()
    assert event.source == ErrorSource.OPERATION and event.operation_name == "invoice.settle"
    assert event.payload == {"invoice": 7, "password": "[redacted]"}
    assert event.message == "refused card [card]" and "[card]" in event.group.message
    assert event.user == user and event.user_repr == "op"
    assert "ValueError: refused card [card]" in event.traceback
    assert "site_a" in event.traceback


def test_request_id_and_user_default_to_the_request_context(make_user, rf):
    user = make_user(username="ctx")
    request = rf.get("/x")
    request.user = user
    with context.bind(context.RequestContext(request_id="req-from-context", request=request)):
        event = record()
    assert event.request_id == "req-from-context" and event.user == user


def test_unknown_source_is_stored_as_other():
    assert record(source="cron").source == ErrorSource.OTHER


def test_new_group_alerts_once_after_commit(alerts, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        event = record(message="first")
    with django_capture_on_commit_callbacks(execute=True):
        record(message="second")
    assert len(alerts.raised) == 1
    alert = alerts.raised[0]
    group = event.group
    assert alert["source"] == "errors" and alert["key"] == group.fingerprint[:16]
    assert alert["severity"] == "error"
    assert alert["title"] == "New error: ValueError: first"
    assert alert["details"]["group_id"] == group.pk and alert["details"]["count"] == 1
    assert alert["details"]["culprit"] == "tests.monitoring.helpers.fail"
    assert alert["details"]["source"] == "operation"


def test_alert_waits_for_commit(alerts, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record()
    assert alerts.raised == [] and len(callbacks) == 1


def test_resolved_group_that_happens_again_is_a_regression(
    alerts, make_user, django_capture_on_commit_callbacks
):
    actor = make_user(username="fixer")
    with django_capture_on_commit_callbacks(execute=True):
        group = record().group
        error_group_resolve(group=group, actor=actor)
    group.refresh_from_db()
    assert group.status == ErrorStatus.RESOLVED and group.resolved_by == actor
    assert alerts.resolved == [{"source": "errors", "key": group.fingerprint[:16]}]
    with django_capture_on_commit_callbacks(execute=True):
        record(message="again")
    group.refresh_from_db()
    assert group.status == ErrorStatus.UNRESOLVED and group.regressed_at is not None
    assert group.count == 2
    assert alerts.titles() == ["New error: ValueError: failed", "Regression: ValueError: again"]
    assert alerts.raised[-1]["key"] == group.fingerprint[:16]


def test_ignored_group_counts_but_does_not_alert(
    alerts, make_user, django_capture_on_commit_callbacks
):
    actor = make_user()
    with django_capture_on_commit_callbacks(execute=True):
        group = record().group
        error_group_ignore(group=group, actor=actor)
    assert len(alerts.resolved) == 1
    alerts.raised.clear()
    with (
        override_settings(ERROR_LOG_SPIKE_MIN_EVENTS=2),
        django_capture_on_commit_callbacks(execute=True),
    ):
        for _ in range(5):
            record()
    group.refresh_from_db()
    assert group.status == ErrorStatus.IGNORED and group.count == 6
    assert alerts.raised == []


def test_reopened_group_is_unresolved_again(make_user):
    actor = make_user()
    group = record().group
    error_group_ignore(group=group, actor=actor)
    error_group_reopen(group=group, actor=actor)
    group.refresh_from_db()
    assert group.status == ErrorStatus.UNRESOLVED


def _age_group(group, *, first_seen_ago, alerted_ago):
    now = timezone.now()
    ErrorGroup.objects.filter(pk=group.pk).update(
        first_seen=now - first_seen_ago, last_alerted_at=now - alerted_ago
    )
    ErrorEvent.objects.filter(group=group).update(occurred_at=now - first_seen_ago)


def _baseline(group, *, events, hours=24):
    now = timezone.now()
    step = timedelta(hours=hours) / events
    ErrorEvent.objects.bulk_create(
        ErrorEventFactory.build(group=group, occurred_at=now - timedelta(minutes=10) - i * step)
        for i in range(events)
    )


def test_spike_against_a_quiet_baseline_alerts_once_per_window(
    alerts, django_capture_on_commit_callbacks
):
    group = record().group
    _age_group(group, first_seen_ago=timedelta(days=2), alerted_ago=timedelta(hours=1))
    _baseline(group, events=24)  # one an hour: a 5-minute window usually holds 0.08
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(9):
            record()
    assert alerts.raised == []  # 9 < ERROR_LOG_SPIKE_MIN_EVENTS
    with django_capture_on_commit_callbacks(execute=True):
        record(message="the tenth")
    assert alerts.titles() == ["Spike: ValueError: the tenth"]
    assert alerts.raised[0]["key"] == group.fingerprint[:16]
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(20):
            record()
    assert len(alerts.raised) == 1  # at most once per window
    group.refresh_from_db()
    assert group.last_alerted_at > timezone.now() - timedelta(minutes=1)


def test_busy_group_at_its_usual_rate_is_no_spike(alerts, django_capture_on_commit_callbacks):
    group = record().group
    _age_group(group, first_seen_ago=timedelta(days=2), alerted_ago=timedelta(hours=1))
    _baseline(group, events=288 * 4)  # four per window, all day
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(15):
            record()
    assert alerts.raised == []  # 15 in the window < 5 x 4


def test_young_group_baseline_counts_from_its_first_sighting(
    alerts, django_capture_on_commit_callbacks
):
    # 40 events in the last 40 minutes is a rate of 5 per window, not 40 per day.
    group = record().group
    _age_group(group, first_seen_ago=timedelta(minutes=45), alerted_ago=timedelta(hours=1))
    _baseline(group, events=40, hours=0.5)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(12):
            record()
    assert alerts.raised == []


def test_recording_cost_does_not_grow_with_events(django_assert_num_queries):
    record()
    group = ErrorGroup.objects.get()
    _baseline(group, events=300)
    with CaptureQueriesContext(connection) as few:
        record()
    _baseline(group, events=300)
    with django_assert_num_queries(len(few.captured_queries)):
        record()


def test_never_raises_when_the_database_write_fails(monkeypatch):
    class Broken:
        def select_for_update(self, *args, **kwargs):
            raise RuntimeError("database is on fire")

    monkeypatch.setattr(ErrorGroup, "objects", Broken())
    assert record() is None
    monkeypatch.undo()
    assert not ErrorEvent.objects.exists()


def test_never_raises_when_the_alert_contract_fails(
    monkeypatch, django_capture_on_commit_callbacks
):
    def broken(**kwargs):
        raise RuntimeError("no delivery")

    monkeypatch.setattr(services, "raise_alert", broken)
    with django_capture_on_commit_callbacks(execute=True):
        event = record()
    assert event is not None and ErrorEvent.objects.count() == 1


def test_text_only_failure_is_recorded():
    text = (
        "boom : Traceback (most recent call last):\n"
        '  File "/elsewhere/site-packages/lib/jobs.py", line 3, in run\n'
        "    raise KeyError('boom')\n"
        "KeyError: 'boom'\n"
    )
    event = error_record(source="task", task_name="nightly", traceback_text=text)
    assert event.group.exception_type == "KeyError" and event.message == "boom"
    assert event.traceback == text and event.task_name == "nightly"


# Retention ------------------------------------------------------------------


def test_purge_deletes_events_past_retention_and_keeps_counts():
    event = record()
    group = event.group
    now = timezone.now()
    _baseline(group, events=3)
    old = ErrorEvent.objects.bulk_create(
        ErrorEventFactory.build(group=group, occurred_at=now - timedelta(days=d)) for d in (91, 120)
    )
    ErrorEvent.objects.filter(pk=event.pk).update(occurred_at=now - timedelta(days=89))
    assert error_log_purge(now=now) == 2
    assert not ErrorEvent.objects.filter(pk__in=[e.pk for e in old]).exists()
    assert ErrorEvent.objects.filter(group=group).count() == 4
    group.refresh_from_db()
    assert group.count == 1  # counts are not recomputed from what remains


@override_settings(ERROR_LOG_MAX_EVENTS_PER_GROUP=3)
def test_purge_keeps_only_the_newest_events_of_a_group(django_assert_max_num_queries):
    big = record(site_a).group
    small = record(site_b).group
    _baseline(big, events=6)
    _baseline(small, events=1)
    newest_big = list(ErrorEvent.objects.filter(group=big).order_by("-occurred_at")[:3])
    with django_assert_max_num_queries(6):
        assert error_log_purge() == 4
    assert list(ErrorEvent.objects.filter(group=big).order_by("-occurred_at")) == newest_big
    assert ErrorEvent.objects.filter(group=small).count() == 2
    big.refresh_from_db()
    assert big.count == 1


def test_purge_task_calls_the_service():
    event = record()
    ErrorEvent.objects.filter(pk=event.pk).update(occurred_at=timezone.now() - timedelta(days=400))
    assert purge_error_log() == 1
    assert purge_error_log() == 0
