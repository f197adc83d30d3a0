"""raise_alert / resolve_alert: one open alert per (source, key), a timeline, never raising."""

import threading
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, connections
from django.utils import timezone

from alerts import services
from alerts.channels import runbook_link
from alerts.exceptions import AlertNotOpen
from alerts.models import Alert
from integrity.transactions import OperationFailed, run_operation
from tests.alerts.factories import AlertFactory


def raise_(key="disk", severity="warning", title="Disk filling up", **details):
    return services.raise_alert(
        source="test", key=key, severity=severity, title=title, details=details
    )


def test_repeats_bump_one_alert_instead_of_making_new_ones(db):
    first = raise_(free="10%")
    again = raise_(free="8%")
    assert first.pk == again.pk
    alert = Alert.objects.get()
    assert alert.occurrences == 2 and alert.details == {"free": "8%"}
    assert alert.last_seen >= alert.first_seen
    assert [e.kind for e in alert.events.all()] == ["raised", "repeated"]


def test_a_storm_is_one_alert_with_a_short_timeline(db):
    for _ in range(50):
        raise_()
    alert = Alert.objects.get()
    assert alert.occurrences == 50
    assert alert.events.count() == 2  # raised, then repeats noted at most once a minute


def test_severity_escalates_but_never_quietly_drops(db):
    raise_(severity="warning")
    raise_(severity="critical")
    raise_(severity="info")
    alert = Alert.objects.get()
    assert alert.severity == "critical"
    assert "escalated" in [e.kind for e in alert.events.all()]


def test_resolve_closes_it_and_the_next_report_opens_a_new_alert(db):
    first = raise_()
    services.resolve_alert(source="test", key="disk")
    first.refresh_from_db()
    assert first.state == "resolved" and first.resolved_at is not None
    second = raise_()
    assert second.pk != first.pk and second.state == "firing"
    assert services.resolve_alert(source="test", key="nothing-open") is None


def test_acknowledge_and_manual_resolve(db, operator):
    alert = raise_()
    alert = services.alert_acknowledge(alert=alert, actor=operator)
    assert alert.state == "acknowledged" and alert.acknowledged_by == operator
    assert raise_().pk == alert.pk  # still the open alert
    with pytest.raises(AlertNotOpen):
        services.alert_acknowledge(alert=alert, actor=operator)
    alert = services.alert_resolve(alert=alert, actor=operator)
    assert alert.state == "resolved" and alert.resolved_by == operator
    assert [e.kind for e in alert.events.all()] == [
        "raised",
        "acknowledged",
        "repeated",
        "resolved",
    ]


def test_bad_severity_is_a_programming_error(db):
    with pytest.raises(ValueError):
        raise_(severity="urgent")


def test_a_database_failure_never_reaches_the_caller(db):
    def down(execute, sql, params, many, context):
        raise DatabaseError("database is down")

    with connection.execute_wrapper(down):
        assert raise_() is None  # logged, not raised
        assert services.resolve_alert(source="test", key="disk") is None
    assert not Alert.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_reports_of_one_problem_make_one_alert():
    barrier = threading.Barrier(6)
    errors = []

    def report():
        try:
            barrier.wait()
            raise_(key="race")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=report) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    alert = Alert.objects.get(key="race")
    assert alert.occurrences == 6


def test_operations_report_through_the_contract(db):
    def broken(ctx):
        raise RuntimeError("nope")

    with pytest.raises(OperationFailed):
        run_operation("test.alerting", [broken])
    alert = Alert.objects.get(source="operations", key="test.alerting")
    assert alert.severity == "error" and alert.details["dead_letter"]


class TestApiAndAdmin:
    def test_operator_acknowledges_and_resolves_over_the_api(self, api, operator, db):
        alert = raise_()
        client = api.as_user(operator)
        listed = client.get("/api/v1/alerts/", {"state": "firing"}).json()
        assert [a["id"] for a in listed["results"]] == [alert.pk]
        acked = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/").json()
        assert acked["state"] == "acknowledged" and acked["events"][-1]["actor"] == "operator"
        again = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/")
        assert again.status_code == 422 and again.json()["error"]["code"] == "alert.not_open"
        assert client.post(f"/api/v1/alerts/{alert.pk}/resolve/").json()["state"] == "resolved"

    @pytest.mark.parametrize("role", ["finance_clerk", "finance_approver", "auditor"])
    def test_other_roles_cannot_acknowledge(self, api, make_user, role):
        alert = raise_()
        client = api.as_user(make_user(role))
        assert client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/").status_code == 403
        alert.refresh_from_db()
        assert alert.state == "firing"

    def test_admin_list_and_acknowledge_action(self, client, operator, db):
        alert = raise_(title="Queue too long")
        client.force_login(operator)
        page = client.get("/admin/alerts/alert/").content.decode()
        assert "Queue too long" in page
        client.post(
            "/admin/alerts/alert/", {"action": "acknowledge", "_selected_action": [alert.pk]}
        )
        alert.refresh_from_db()
        assert alert.state == "acknowledged" and alert.acknowledged_by == operator


def test_admin_filters_by_age_and_occurrences(client, operator, db):
    raise_(key="old-one")
    for _ in range(12):
        raise_(key="noisy")
    Alert.objects.filter(key="old-one").update(first_seen=timezone.now() - timedelta(days=9))
    client.force_login(operator)
    page = client.get("/admin/alerts/alert/", {"occurrences": "11+"}).content.decode()
    assert "noisy" in page and "old-one" not in page
    page = client.get("/admin/alerts/alert/", {"age": "old"}).content.decode()
    assert "old-one" in page and "noisy" not in page


def test_notifications_link_the_runbook():
    failed = AlertFactory.build(source="deadletters", key="failed:3")
    assert runbook_link(failed).endswith("runbooks.md#deadlettersfailedid")
    operation = AlertFactory.build(source="operations", key="x")
    assert runbook_link(operation).endswith("#operationsoperation-name")
