"""A real `manage.py qcluster`: a delivery that fails for good fails its task, once, and the
task's failure path keeps it as a dead letter."""

import time

import pytest
from django_q.models import OrmQ, Task

from alerts import services
from alerts.models import Delivery
from integrity.models import DeadLetter
from tests.alerts.factories import TargetFactory, route_to
from tests.e2e.test_scheduler import start_cluster, stop_cluster


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_delivery_that_fails_for_good_is_dead_lettered_by_its_task():
    # A URL the outbound rules refuse for good: no retry, and no network needed.
    target = TargetFactory(name="hook", channel="webhook", address="file:///proc/self/environ")
    route_to(target, source="e2e")  # not the alerts that the dead letter itself raises
    services.raise_alert(source="e2e", key="dead-letter", severity="error", title="Probe")
    # The default Q_MAX_ATTEMPTS (3): the report task must still fail only once.
    proc, log = start_cluster(Q_GUARD_CYCLE="0.5")
    try:
        deadline = time.monotonic() + 90
        letter = None
        while time.monotonic() < deadline and letter is None:
            assert proc.poll() is None, "qcluster exited early; see var/qcluster-e2e.log"
            letter = DeadLetter.objects.filter(operation="alerts.tasks.send_delivery").first()
            time.sleep(0.3)
        log.seek(0)
        assert letter is not None, log.read()[-3000:]
    finally:
        stop_cluster(proc, log)
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 1
    assert letter.kind == "task" and letter.payload["args"] == [delivery.pk]
    assert letter.payload["kwargs"] == {}
    assert "outbound.scheme_not_allowed" in letter.error
    (task,) = Task.objects.filter(func="alerts.tasks.send_delivery")
    assert not task.success
    assert not OrmQ.objects.exists()  # acknowledged: never presented again
