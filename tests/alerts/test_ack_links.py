"""One-click acknowledge links: a link acknowledges the firing it was sent for, once."""

import re
from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone

from alerts import services
from alerts.exceptions import AckLinkGone, AckLinkInvalid, AlertNotOpen
from alerts.models import Alert, AlertEvent, Delivery
from audit.models import AuditEvent
from tests.alerts.conftest import fire, make_due
from tests.threads import run_threads


def links(smtp) -> list[str]:
    """The acknowledge links of the emails received so far, oldest first."""
    found = []
    for _, message in smtp.messages:
        body = message.get_payload()[0].get_payload(decode=True).decode()
        found += re.findall(r"(/alerts/ack/[^/\s]+/)", body)
    return found


def state(alert):
    """What a refused link must leave exactly as it was."""
    row = Alert.objects.get(pk=alert.pk)
    return (
        row.state,
        row.firing,
        row.acknowledged_at,
        row.next_escalation_at,
        AlertEvent.objects.count(),
        AuditEvent.objects.count(),
        list(Delivery.objects.order_by("pk").values_list("ack_used_at", flat=True)),
    )


def test_a_used_link_is_gone_and_changes_nothing(policy, smtp, client):
    alert = fire()
    services.alert_escalate_due()
    (link,) = links(smtp)
    assert client.post(link).status_code == 200
    acked = Alert.objects.get(pk=alert.pk)
    assert acked.state == "acknowledged" and acked.firing == 1
    assert Delivery.objects.get().ack_used_at is not None
    before = state(alert)
    again = client.post(link)
    assert again.status_code == 410 and b"already used" in again.content
    assert client.get(link).status_code == 410  # the page says so before any button
    assert state(alert) == before


def test_a_used_link_stays_used_after_the_acknowledgement_times_out(policy, smtp, client):
    alert = fire()
    services.alert_escalate_due()
    (link,) = links(smtp)
    assert client.post(link).status_code == 200
    Alert.objects.filter(pk=alert.pk).update(acknowledged_at=timezone.now() - timedelta(hours=1))
    services.alert_escalate_due()  # the timeout: firing again, and the next step notified
    refired = Alert.objects.get(pk=alert.pk)
    assert refired.state == "firing" and refired.firing == 2
    before = state(alert)
    assert client.post(link).status_code == 410
    assert state(alert) == before


def test_a_link_sent_before_an_ack_timeout_does_not_acknowledge_the_new_firing(
    policy, smtp, client, operator
):
    alert = fire()
    services.alert_escalate_due()
    (old,) = links(smtp)
    services.alert_acknowledge(alert=alert, actor=operator)  # from the admin, not the link
    Alert.objects.filter(pk=alert.pk).update(acknowledged_at=timezone.now() - timedelta(hours=1))
    services.alert_escalate_due()
    assert Alert.objects.get(pk=alert.pk).firing == 2
    _, new = links(smtp)  # the lead's notification of the new firing
    before = state(alert)
    refused = client.post(old)
    assert refused.status_code == 410 and b"fired" in refused.content
    assert client.get(old).status_code == 410
    assert state(alert) == before and Alert.objects.get(pk=alert.pk).state == "firing"
    assert client.post(new).status_code == 200
    assert Alert.objects.get(pk=alert.pk).state == "acknowledged"


def test_a_link_after_its_alert_resolved_changes_nothing_even_when_it_fires_again(
    policy, smtp, client
):
    alert = fire()
    services.alert_escalate_due()
    (link,) = links(smtp)
    services.resolve_alert(source="operations", key="finance.journal_entry_approve")
    before = state(alert)
    assert client.post(link).status_code == 409
    assert state(alert) == before
    reopened = fire()  # the same source and key open a new alert
    assert reopened.pk != alert.pk
    assert client.post(link).status_code == 409  # the link names the old alert
    assert Alert.objects.get(pk=reopened.pk).state == "firing"


def test_a_link_acknowledges_only_its_own_alert_and_notification(policy, smtp, client):
    alert = fire()
    other = fire(key="finance.journal_entry_post")
    services.alert_escalate_due()
    mine = Delivery.objects.get(alert=alert)
    theirs = Delivery.objects.get(alert=other)
    # Signed like ours (only the server's key can), naming one alert and the other's delivery.
    crossed = signing.dumps(
        {"alert": alert.pk, "firing": 1, "delivery": theirs.pk}, salt=services.ACK_SALT
    )
    before = state(alert)
    assert client.post(f"/alerts/ack/{crossed}/").status_code == 404
    old_format = signing.dumps({"alert": alert.pk, "to": "on-call"}, salt=services.ACK_SALT)
    assert client.post(f"/alerts/ack/{old_format}/").status_code == 404
    assert state(alert) == before
    assert client.post(f"/alerts/ack/{services.ack_token(delivery=mine)}/").status_code == 200
    assert Alert.objects.get(pk=other.pk).state == "firing"


@pytest.mark.parametrize("where", ["signature", "payload"])
def test_a_tampered_link_is_not_valid(policy, smtp, client, where):
    alert = fire()
    services.alert_escalate_due()
    (link,) = links(smtp)
    token = link.split("/")[-2]
    payload, stamp, signature = token.split(":")
    if where == "signature":
        forged = f"{payload}:{stamp}:{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    else:
        forged = f"{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}:{stamp}:{signature}"
    before = state(alert)
    assert client.get(f"/alerts/ack/{forged}/").status_code == 404
    assert client.post(f"/alerts/ack/{forged}/").status_code == 404
    assert state(alert) == before


def test_the_service_names_each_refusal_by_code(policy, smtp, operator):
    alert = fire()
    services.alert_escalate_due()
    token = services.ack_token(delivery=Delivery.objects.get())
    with pytest.raises(AckLinkInvalid) as caught:
        services.alert_acknowledge_by_token(token=token + "x")
    assert caught.value.code == "alert.link_invalid"
    services.alert_acknowledge(alert=alert, actor=operator)
    with pytest.raises(AlertNotOpen):
        services.alert_acknowledge_by_token(token=token)
    Alert.objects.filter(pk=alert.pk).update(acknowledged_at=timezone.now() - timedelta(hours=1))
    services.alert_escalate_due()
    with pytest.raises(AckLinkGone) as caught:
        services.alert_acknowledge_by_token(token=token)
    assert caught.value.code == "alert.link_superseded" and caught.value.http_status == 410


@pytest.mark.django_db(transaction=True)
def test_two_clicks_at_once_acknowledge_once(policy, smtp):
    alert = fire()
    make_due(alert)
    services.alert_escalate_due()
    token = services.ack_token(delivery=Delivery.objects.get())
    done = []
    errors = run_threads(lambda i: done.append(services.alert_acknowledge_by_token(token=token)), 2)
    assert len(done) == 1 and len(errors) == 1
    assert getattr(errors[0], "code", None) == "alert.link_used"
    assert AuditEvent.objects.filter(action="alert.acknowledged").count() == 1
