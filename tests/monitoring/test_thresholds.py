"""Thresholds as an operator relies on them: a breach that holds raises its alert, one that
does not hold raises nothing, recovery past the clear value resolves it, and a metric hovering
on the line neither flaps nor resolves; admins edit thresholds (audited), nobody else does."""

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client
from django_q.conf import Conf
from django_q.models import OrmQ

from alerts.models import Alert
from audit.models import AuditEvent
from monitoring.histogram import slot_of
from monitoring.models import DatabaseSnapshot, Threshold
from monitoring.services import request_buckets_write, threshold_save, thresholds_evaluate
from monitoring.services.metrics import Tally

START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def traffic(minute: datetime, seconds: float, *, count: int = 40, failed: int = 0) -> None:
    ok = Tally()
    for _ in range(count - failed):
        ok.count += 1
        ok.duration_sum += seconds
        ok.duration_max = seconds
        ok.slots[slot_of(seconds)] += 1
    buckets = {(minute, "v1:account-list", "GET", "2xx"): ok}
    if failed:
        bad = Tally(count=failed, duration_sum=failed * seconds, duration_max=seconds)
        bad.slots[slot_of(seconds)] = failed
        buckets[(minute, "v1:account-list", "GET", "5xx")] = bad
    request_buckets_write(buckets)


def firing(name: str) -> Alert | None:
    return Alert.objects.filter(source="thresholds", key=name, state="firing").first()


def latency(**changes) -> Threshold:
    """The shipped p95 threshold (above 500 ms for 10 minutes, clear at 400 ms)."""
    threshold = Threshold.objects.get(name="p95-latency")
    for name, value in changes.items():
        setattr(threshold, name, value)
    threshold.save()
    return threshold


def minute_by_minute(p95_seconds: list[float]) -> list[list[str]]:
    """Each minute: its traffic, then an evaluation (the 5-minute window holds only this
    minute's traffic after the first five: each minute is older than the last)."""
    said = []
    for index, seconds in enumerate(p95_seconds):
        now = START + timedelta(minutes=index * 6)  # windows that do not overlap
        traffic(now, seconds)
        said.append(thresholds_evaluate(now=now + timedelta(seconds=30)))
    return said


@pytest.mark.django_db
def test_the_defaults_are_shipped():
    names = set(Threshold.objects.values_list("name", flat=True))
    assert names == {
        "p95-latency",
        "error-rate",
        "disk-free",
        "days-until-disk-full",
        "queue-backlog",
        "deadlocks-rising",
    }


@pytest.mark.django_db
def test_a_breach_that_holds_raises_and_recovery_past_the_clear_value_resolves():
    latency(for_minutes=10)
    # 0.6 s requests: breaching from the first evaluation (minute 0); at minute 6 it has not
    # held 10 minutes yet; at minute 12 it has.
    said = minute_by_minute([0.6, 0.6, 0.6])
    assert said == [[], [], ["p95-latency: fired"]]
    alert = firing("p95-latency")
    assert alert is not None and alert.severity == "error"
    assert "p95 latency" in alert.title and "above 500" in alert.title
    # Back to 450 ms requests (a p95 of 487 ms, read from the 250-500 ms bucket): under the
    # line but over the clear value: still firing.
    assert minute_by_minute_after(said, [0.45]) == [[]]
    assert firing("p95-latency") is not None
    # 200 ms requests (a p95 of 243 ms): past the clear value: resolved.
    assert minute_by_minute_after(said, [0.2]) == [["p95-latency: cleared"]]
    assert firing("p95-latency") is None


def minute_by_minute_after(previous: list, p95_seconds: list[float]) -> list[list[str]]:
    offset = len(previous)
    said = []
    for index, seconds in enumerate(p95_seconds):
        now = START + timedelta(minutes=(offset + index) * 6)
        traffic(now, seconds)
        said.append(thresholds_evaluate(now=now + timedelta(seconds=30)))
    previous.extend(said)
    return said


@pytest.mark.django_db
def test_a_breach_that_does_not_hold_raises_nothing():
    latency(for_minutes=10)
    said = minute_by_minute([0.6, 0.3, 0.6, 0.3, 0.6])
    assert all(s == [] for s in said)
    assert firing("p95-latency") is None


@pytest.mark.django_db
def test_a_metric_hovering_on_the_line_does_not_flap():
    latency(for_minutes=0)
    # Around 500 ms, never down to the 400 ms clear value: one alert, never resolved.
    said = minute_by_minute([0.6, 0.45, 0.6, 0.45, 0.6, 0.45])
    assert said[0] == ["p95-latency: fired"]
    assert all(s == [] for s in said[1:])
    assert Alert.objects.filter(source="thresholds", key="p95-latency").count() == 1
    assert firing("p95-latency") is not None


@pytest.mark.django_db
def test_the_error_rate_needs_enough_requests_to_say_anything():
    rate = Threshold.objects.get(name="error-rate")
    rate.for_minutes = 0
    rate.save()
    traffic(START, 0.01, count=10, failed=5)  # half failed, but only 10 requests
    assert thresholds_evaluate(now=START + timedelta(seconds=30)) == []
    traffic(START + timedelta(minutes=1), 0.01, count=100, failed=5)
    assert thresholds_evaluate(now=START + timedelta(minutes=1, seconds=30)) == [
        "error-rate: fired"
    ]


@pytest.mark.django_db
def test_disabling_a_firing_threshold_resolves_its_alert():
    latency(for_minutes=0)
    minute_by_minute([0.6])
    assert firing("p95-latency") is not None
    latency(enabled=False)
    assert thresholds_evaluate(now=START + timedelta(hours=1)) == ["p95-latency: disabled"]
    assert firing("p95-latency") is None


@pytest.mark.django_db
def test_a_metric_without_a_reading_keeps_its_state():
    # No snapshot has measured the disk yet: nothing fires, nothing is resolved.
    assert thresholds_evaluate(now=START) == []
    assert Threshold.objects.get(name="disk-free").last_value is None


# --- the admin ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admins_edit_thresholds_with_an_audit_event_and_others_only_look(make_user):
    boss = make_user("admin", username="boss")
    client = Client()
    client.force_login(boss)
    threshold = Threshold.objects.get(name="p95-latency")
    url = f"/admin/monitoring/threshold/{threshold.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    form = {
        "name": "p95-latency",
        "metric": "latency_p95_ms",
        "comparison": "above",
        "value": "800",
        "clear_value": "600",
        "for_minutes": "15",
        "severity": "error",
        "enabled": "on",
        "description": "",
    }
    assert client.post(url, form).status_code == 302
    threshold.refresh_from_db()
    assert threshold.value == 800 and threshold.for_minutes == 15
    event = AuditEvent.objects.get(action="threshold.changed")
    assert event.actor_id == boss.pk and event.changes["value"] == ["500.0", "800.0"]

    # A clear value on the wrong side of the line is refused by the form.
    bad = client.post(url, {**form, "clear_value": "900"})
    assert bad.status_code == 200 and b"errornote" in bad.content

    for role in ("operator", "auditor"):
        viewer = Client()
        viewer.force_login(make_user(role, username=f"{role}-1"))
        assert viewer.get(url).status_code == 200  # the view page
        assert viewer.post(url, form).status_code == 403
    assert get_user_model().objects.count() == 3


# --- the thresholds that read the snapshots -------------------------------------------------------


def snapshot(at: datetime, *, free_bytes: int, total: int = 100 * 2**30, deadlocks: int = 0):
    return DatabaseSnapshot.objects.create(
        taken_at=at,
        engine="postgresql",
        database_bytes=10**9,
        deadlocks=deadlocks,
        disk_free_ratio=free_bytes / total,
        host={"volumes": [{"roles": ["database"], "free_bytes": free_bytes, "total_bytes": total}]},
    )


@pytest.mark.django_db
def test_a_filling_disk_raises_the_forecast_then_disk_free():
    gib = 2**30
    # A week of snapshots, 1 GiB less free each day, 12 GiB of 100 free now: 12 % free, and at
    # that rate full in 12 days (under 14).
    for day in range(7, -1, -1):
        snapshot(START - timedelta(days=day), free_bytes=(12 + day) * gib)
    assert thresholds_evaluate(now=START) == []  # the breach starts; it must hold 60 minutes
    forecast = Threshold.objects.get(name="days-until-disk-full")
    assert forecast.last_value == pytest.approx(12.0, rel=0.01)
    snapshot(START + timedelta(minutes=61), free_bytes=12 * gib)
    assert thresholds_evaluate(now=START + timedelta(minutes=61)) == ["days-until-disk-full: fired"]
    # 8 GiB free: under 10 %, for 5 minutes.
    snapshot(START + timedelta(minutes=62), free_bytes=8 * gib)
    thresholds_evaluate(now=START + timedelta(minutes=62))
    snapshot(START + timedelta(minutes=68), free_bytes=8 * gib)
    assert "disk-free: fired" in thresholds_evaluate(now=START + timedelta(minutes=68))
    assert firing("disk-free").severity == "critical"


@pytest.mark.django_db
def test_rising_deadlocks_raise_and_an_hour_without_resolves():
    snapshot(START, free_bytes=50 * 2**30, deadlocks=3)
    snapshot(START + timedelta(hours=1), free_bytes=50 * 2**30, deadlocks=5)
    assert thresholds_evaluate(now=START + timedelta(hours=1)) == ["deadlocks-rising: fired"]
    snapshot(START + timedelta(hours=2), free_bytes=50 * 2**30, deadlocks=5)
    assert thresholds_evaluate(now=START + timedelta(hours=2)) == ["deadlocks-rising: cleared"]


@pytest.mark.django_db
def test_a_stale_snapshot_says_nothing_about_now():
    snapshot(START, free_bytes=1 * 2**30)  # 1 % free, but two hours ago
    assert thresholds_evaluate(now=START + timedelta(hours=2)) == []
    assert Threshold.objects.get(name="disk-free").last_value is None


@pytest.mark.django_db
def test_light_traffic_does_not_resolve_a_firing_alert():
    latency(for_minutes=0)
    traffic(START, 3.0, count=25)
    assert thresholds_evaluate(now=START + timedelta(seconds=30)) == ["p95-latency: fired"]
    # The next window has 19 requests (too few to read a p95): the alert stays.
    later = START + timedelta(minutes=6)
    traffic(later, 3.0, count=19)
    assert thresholds_evaluate(now=later + timedelta(seconds=30)) == []
    assert firing("p95-latency") is not None


@pytest.mark.django_db
def test_renaming_a_firing_threshold_resolves_its_old_alert(make_user):
    threshold = latency(for_minutes=0)
    minute_by_minute([0.6])
    assert firing("p95-latency") is not None
    threshold.refresh_from_db()
    threshold.name = "latency-p95"
    threshold_save(threshold=threshold, actor=make_user("admin"), created=False)
    assert firing("p95-latency") is None
    assert not Threshold.objects.get(name="latency-p95").firing


@pytest.mark.django_db
def test_a_gap_in_the_readings_starts_the_hold_over():
    disk = Threshold.objects.get(name="disk-free")  # below 10 % for 5 minutes
    snapshot(START, free_bytes=5 * 2**30)
    assert thresholds_evaluate(now=START) == []
    assert Threshold.objects.get(pk=disk.pk).breaching_since == START
    # No snapshot for an hour: no reading, and the pending breach is forgotten ...
    assert thresholds_evaluate(now=START + timedelta(minutes=40)) == []
    assert Threshold.objects.get(pk=disk.pk).breaching_since is None
    # ... so the next breaching reading starts the 5 minutes again instead of firing at once.
    later = START + timedelta(hours=1)
    snapshot(later, free_bytes=5 * 2**30)
    assert thresholds_evaluate(now=later) == []
    snapshot(later + timedelta(minutes=5), free_bytes=5 * 2**30)
    assert thresholds_evaluate(now=later + timedelta(minutes=5)) == ["disk-free: fired"]


@pytest.mark.django_db
def test_the_queue_backlog_fires_once_a_task_has_waited_five_minutes():
    backlog = Threshold.objects.get(name="queue-backlog")
    assert (backlog.value, backlog.for_minutes) == (300, 0)
    OrmQ.objects.create(
        key=Conf.CLUSTER_NAME, payload="x", lock=datetime.now(UTC) - timedelta(seconds=290)
    )
    assert "queue-backlog: fired" not in thresholds_evaluate()
    OrmQ.objects.update(lock=datetime.now(UTC) - timedelta(seconds=310))
    assert "queue-backlog: fired" in thresholds_evaluate()


@pytest.mark.django_db
def test_a_clear_value_on_the_wrong_side_is_explained_on_its_field():
    threshold = Threshold.objects.get(name="p95-latency")
    threshold.value, threshold.clear_value = 300, 350
    with pytest.raises(ValidationError) as refused:
        threshold.full_clean()
    assert refused.value.message_dict == {
        "clear_value": [
            "The clear value must be on the safe side of the value: at or below it for an "
            "'above' threshold, at or above it for a 'below' one."
        ]
    }


@pytest.mark.django_db
def test_the_queue_backlog_migration_leaves_an_admins_edit_alone():
    migration = importlib.import_module("monitoring.migrations.0010_queue_backlog_at_five_minutes")
    backlog = Threshold.objects.get(name="queue-backlog")
    backlog.for_minutes, backlog.description = 5, "Page the on-call: see RB-7"
    backlog.save()
    migration.forwards(apps, None)
    backlog.refresh_from_db()
    assert (backlog.for_minutes, backlog.description) == (5, "Page the on-call: see RB-7")
    backlog.description = migration.BEFORE
    backlog.save()
    migration.forwards(apps, None)
    backlog.refresh_from_db()
    assert (backlog.for_minutes, backlog.description) == (0, migration.AFTER)


@pytest.mark.django_db
@pytest.mark.parametrize(("value", "clear_value"), [("", "700"), ("abc", "700"), ("600", "")])
def test_the_admin_form_with_a_blank_or_bad_number_says_so_never_a_500(
    make_user, value, clear_value
):
    client = Client()
    client.force_login(make_user("admin"))
    response = client.post(
        "/admin/monitoring/threshold/add/",
        {
            "name": "new-one",
            "metric": "latency_p95_ms",
            "comparison": "above",
            "value": value,
            "clear_value": clear_value,
            "for_minutes": "5",
            "severity": "warning",
            "enabled": "on",
        },
    )
    assert response.status_code == 200  # the form again, with its errors
    assert response.context["adminform"].form.errors
    assert not Threshold.objects.filter(name="new-one").exists()
    assert not AuditEvent.objects.filter(action="threshold.created").exists()
