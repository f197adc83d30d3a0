"""Silences and maintenance windows: recorded, not delivered; delivered when they end."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from alerts import services
from alerts.models import Alert, Delivery, Silence
from config.errors import DomainError
from tests.alerts.conftest import fire, make_due
from tests.alerts.factories import AlertFactory


def test_silenced_alert_is_recorded_but_not_delivered_until_the_silence_ends(
    policy,
    smtp,
    operator,
    make_user,
):
    silence = services.silence_create(
        actor=operator,
        reason="deploying",
        source="operations",
        key_pattern="finance.*",
        severity="error",
        ends_at=timezone.now() + timedelta(hours=1),
    )
    assert not silence.needs_approval  # not critical
    alert = fire()
    services.alert_escalate_due()
    alert.refresh_from_db()
    assert smtp.messages == [] and not Delivery.objects.exists()
    assert alert.state == "firing" and alert.occurrences == 1  # the record is kept
    assert abs((alert.next_escalation_at - silence.ends_at).total_seconds()) < 1
    assert "silenced" in [e.kind for e in alert.events.all()]
    services.silence_expire(silence=silence, actor=operator)
    make_due(alert)
    services.alert_escalate_due()  # still firing when the silence ends: delivered then
    assert [m[0] for m in smtp.messages] == [["oncall@example.com"]]


def test_silencing_what_may_be_critical_needs_a_second_operator(policy, smtp, operator, make_user):
    silence = services.silence_create(
        actor=operator, reason="noisy", ends_at=timezone.now() + timedelta(hours=1)
    )
    assert silence.needs_approval
    fire(severity="critical")
    services.alert_escalate_due()
    assert len(smtp.messages) == 1  # not in force until approved
    with pytest.raises(DomainError) as exc:
        services.silence_approve(silence=silence, actor=operator)
    assert exc.value.code == "silence.self_approval"
    services.silence_approve(silence=silence, actor=make_user("operator"))
    other = fire(key="finance.other", severity="critical")
    services.alert_escalate_due()
    assert len(smtp.messages) == 1
    assert Alert.objects.get(pk=other.pk).events.filter(kind="silenced").exists()


def test_every_silence_expires_and_zones_are_checked(db, operator):
    with pytest.raises(DomainError) as exc:
        services.silence_create(actor=operator, reason="x", ends_at=timezone.now() - timedelta(1))
    assert exc.value.code == "silence.invalid" and "ends_at" in exc.value.fields
    with pytest.raises(DomainError) as exc:
        services.silence_create(
            actor=operator,
            reason="x",
            timezone_name="Mars/Olympus",
            ends_at=timezone.now() + timedelta(hours=1),
        )
    assert "timezone" in exc.value.fields


def test_recurring_window_in_a_named_time_zone(db, operator):
    """Every Sunday 01:00-03:00 Europe/Berlin."""
    berlin = ZoneInfo("Europe/Berlin")
    silence = services.silence_create(
        actor=operator,
        reason="weekly maintenance",
        severity="warning",
        weekdays="7",
        window_start=time(1, 0),
        window_end=time(3, 0),
        timezone_name="Europe/Berlin",
        starts_at=timezone.now() - timedelta(days=30),
        ends_at=timezone.now() + timedelta(days=365),
    )
    alert = AlertFactory.build(source="x", key="y", severity="warning")
    # Find the next Sunday in Berlin.
    day = datetime.now(berlin).date()
    while day.isoweekday() != 7:
        day += timedelta(days=1)
    inside = datetime.combine(day, time(2, 30), tzinfo=berlin)
    outside = datetime.combine(day, time(3, 30), tzinfo=berlin)
    end = services.silenced_until(alert=alert, now=inside.astimezone(ZoneInfo("UTC")))
    assert end == datetime.combine(day, time(3, 0), tzinfo=berlin)
    assert services.silenced_until(alert=alert, now=outside.astimezone(ZoneInfo("UTC"))) is None
    assert silence.pk


def test_api_silence_an_alert_and_manage_silences(api, operator, make_user, policy):
    alert = fire()
    client = api.as_user(operator)
    response = client.post(
        f"/api/v1/alerts/{alert.pk}/silence/",
        {"minutes": 30, "reason": "known issue"},
        format="json",
    )
    assert response.status_code == 201
    silence_id = response.json()["id"]
    listed = client.get("/api/v1/silences/").json()
    assert [s["id"] for s in listed["results"]] == [silence_id]
    bad = client.post(
        "/api/v1/silences/", {"reason": "x", "ends_at": "2000-01-01T00:00:00Z"}, format="json"
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "silence.invalid"
    assert client.post(f"/api/v1/silences/{silence_id}/expire/").status_code == 200
    clerk = api.as_user(make_user("finance_clerk"))
    assert (
        clerk.post(
            f"/api/v1/alerts/{alert.pk}/silence/", {"minutes": 5, "reason": "x"}, format="json"
        ).status_code
        == 403
    )


def test_an_existing_silence_cannot_be_widened_in_the_admin(client, make_user):
    operator = make_user("operator", is_staff=True)
    narrow = services.silence_create(
        actor=operator,
        reason="noisy check",
        source="checks",
        key_pattern="finance.x",
        severity="info",
        ends_at=timezone.now() + timedelta(hours=1),
    )
    assert not narrow.needs_approval
    client.force_login(operator)
    page = client.get(f"/admin/alerts/silence/{narrow.pk}/change/")
    assert set(page.context["adminform"].form.fields) == {"reason"}
    client.post(
        f"/admin/alerts/silence/{narrow.pk}/change/",
        {
            "reason": "typo fixed",
            "source": "",
            "key_pattern": "*",
            "severity": "",
            "ends_at_0": "2099-12-31",
            "ends_at_1": "00:00:00",
        },
    )
    stored = Silence.objects.get(pk=narrow.pk)
    assert (stored.source, stored.key_pattern, stored.severity) == ("checks", "finance.x", "info")
    assert stored.ends_at == narrow.ends_at and stored.reason == "typo fixed"
