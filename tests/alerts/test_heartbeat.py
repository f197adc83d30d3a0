"""The dead-man switch: a heartbeat an outside monitor can watch."""

from datetime import timedelta

from alerts import services
from alerts.models import Heartbeat
from tests.receivers import Receiver


def test_heartbeat_pings_the_monitor_and_the_endpoint_goes_stale(client, db, settings):
    assert client.get("/alerts/heartbeat/").status_code == 503  # never beat: nothing runs
    monitor = Receiver()
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True  # the monitor listens on 127.0.0.1
    try:
        settings.ALERT_HEARTBEAT_URL = monitor.url + "/ping/abc"
        status = services.heartbeat_beat()
    finally:
        monitor.stop()
    assert status == "ping 200"
    assert [(r["method"], r["path"]) for r in monitor.requests] == [("GET", "/ping/abc")]
    response = client.get("/alerts/heartbeat/")
    assert response.status_code == 200 and response.json()["ok"] is True
    Heartbeat.objects.update(beat_at=Heartbeat.objects.get().beat_at - timedelta(minutes=10))
    stale = client.get("/alerts/heartbeat/")
    assert stale.status_code == 503 and stale.json()["age_seconds"] > 500


def test_the_heartbeat_ping_obeys_the_outbound_rules(db, settings):
    monitor = Receiver()
    try:
        settings.ALERT_HEARTBEAT_URL = monitor.url + "/ping/abc"  # 127.0.0.1, not allowed
        status = services.heartbeat_beat()
    finally:
        monitor.stop()
    assert status.startswith("ping failed: refused by the outbound rules")
    assert monitor.requests == [] and Heartbeat.objects.get().ping_status == status


def test_heartbeat_survives_a_dead_monitor(db, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True
    settings.ALERT_HEARTBEAT_URL = "http://127.0.0.1:9/nothing-listens"
    assert services.heartbeat_beat().startswith("ping failed")
    assert Heartbeat.objects.get().beat_at is not None
