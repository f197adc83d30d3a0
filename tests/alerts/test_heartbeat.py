"""The dead-man switch: a heartbeat an outside monitor can watch."""

from datetime import timedelta

from alerts import services
from alerts.models import Heartbeat
from tests.alerts.test_http_channels import Receiver


def test_heartbeat_pings_the_monitor_and_the_endpoint_goes_stale(client, db, settings):
    assert client.get("/alerts/heartbeat/").status_code == 503  # never beat: nothing runs
    monitor = Receiver()
    try:
        settings.ALERT_HEARTBEAT_URL = monitor.url + "/ping/abc"
        # The receiver only answers POST; a GET ping gets 501, which is still reported.
        status = services.heartbeat_beat()
    finally:
        monitor.stop()
    assert status.startswith("ping")
    response = client.get("/alerts/heartbeat/")
    assert response.status_code == 200 and response.json()["ok"] is True
    Heartbeat.objects.update(beat_at=Heartbeat.objects.get().beat_at - timedelta(minutes=10))
    stale = client.get("/alerts/heartbeat/")
    assert stale.status_code == 503 and stale.json()["age_seconds"] > 500


def test_heartbeat_survives_a_dead_monitor(db, settings):
    settings.ALERT_HEARTBEAT_URL = "http://127.0.0.1:9/nothing-listens"
    assert services.heartbeat_beat().startswith("ping failed")
    assert Heartbeat.objects.get().beat_at is not None
