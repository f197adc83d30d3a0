"""Checks through the REST API and the admin, as operators, approvers and auditors use them."""

import pytest
from django.test import Client

from audit.models import AuditEvent
from integrity import services, tasks
from integrity.models import CheckRun, FindingExplanation

pytestmark = pytest.mark.django_db


def test_start_a_run_and_wait_for_it(api, operator, fake_checks):
    fake_checks["bad"] = [4]
    response = api.as_user(operator).post(
        "/api/v1/check-runs/", {"tags": ["test"], "wait": True}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "warn" and body["triggered_by"] == "operator"
    assert {r["check"]: r["status"] for r in body["results"]} == {
        "test.rows": "warn",
        "test.broken": "pass",
        "test.windowed": "pass",
    }
    assert response["Location"].endswith(f"/api/v1/check-runs/{body['id']}/")


def test_a_queued_run_is_executed_by_the_worker(
    api, operator, fake_checks, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **k: queued.append(a))
    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_user(operator).post(
            "/api/v1/check-runs/", {"checks": ["test.rows"]}, format="json"
        )
    assert response.status_code == 202 and response.json()["status"] == "queued"
    [(func, run_id)] = queued
    assert func == "integrity.tasks.execute_check_run"
    tasks.execute_check_run(run_id)
    assert tasks.execute_check_run(run_id).endswith("already taken")  # safe to run twice
    detail = api.get(f"/api/v1/check-runs/{run_id}/").json()
    assert detail["status"] == "pass" and detail["trigger"] == "api"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"tags": ["nope"]}, "tags"),
        ({"checks": ["no.such"]}, "checks"),
        ({"tags": "x"}, "tags"),
        ({"wait": "maybe"}, "wait"),
        ({"tags": [{"a": 1}]}, "tags"),
    ],
)
def test_bad_requests_are_400_in_the_error_shape_and_store_nothing(api, operator, body, field):
    response = api.as_user(operator).post("/api/v1/check-runs/", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert field in error["fields"], error
    assert not CheckRun.objects.exists()


def test_list_checks_runs_findings_and_trend(api, auditor, fake_checks):
    fake_checks["bad"] = [1, 2]
    run = services.checks_run(trigger="command", tags=["test"])
    client = api.as_user(auditor)
    checks = {c["name"]: c for c in client.get("/api/v1/checks/").json()}
    assert checks["test.rows"]["last"]["status"] == "warn"
    assert checks["integrity.audit_references"]["last"] is None
    assert checks[
        "finance.trial_balance"
        if "finance.trial_balance" in checks
        else "integrity.migrations_applied"
    ]["alert"].startswith("checks/")
    runs = client.get("/api/v1/check-runs/?status=warn").json()["results"]
    assert [r["id"] for r in runs] == [run.pk]
    findings = client.get(f"/api/v1/check-findings/?run={run.pk}&check=test.rows").json()
    assert [f["sample"] for f in findings["results"]] == [[1], [2]]
    assert client.get("/api/v1/check-findings/?explained=true").json()["results"] == []
    trend = client.get("/api/v1/checks/test.rows/trend/").json()
    assert [t["status"] for t in trend] == ["warn"]
    assert client.get("/api/v1/checks/nope/trend/").status_code == 404


def test_explain_a_finding_through_the_api(api, approver, fake_checks):
    fake_checks["bad"] = [1]
    finding = services.checks_run(trigger="command", checks=["test.rows"]).findings.get()
    client = api.as_user(approver)
    url = f"/api/v1/check-findings/{finding.pk}/explain/"
    blank = client.post(url, {"reason": " "}, format="json")
    assert blank.status_code == 400 and blank.json()["error"]["code"] == "finding.invalid"
    ok = client.post(url, {"reason": "Opening balance import, see ticket FIN-12"}, format="json")
    assert ok.status_code == 200
    assert ok.json()["explanation"]["explained_by"] == "approver"
    assert AuditEvent.objects.filter(action="check_finding.explained").count() == 1
    withdrawn = client.post(f"/api/v1/check-findings/{finding.pk}/withdraw-explanation/")
    assert withdrawn.status_code == 200
    assert withdrawn.json()["explanation"]["withdrawn_by"] == "approver"  # kept, as history
    assert FindingExplanation.objects.get().withdrawn_by == approver
    again = client.post(f"/api/v1/check-findings/{finding.pk}/withdraw-explanation/")
    assert again.status_code == 400


def test_roles_reading_and_running(api, clerk, auditor, fake_checks):
    assert api.as_user(clerk).get("/api/v1/check-runs/").status_code == 403
    assert api.as_user(clerk).get("/api/v1/checks/").status_code == 403
    assert api.as_user(auditor).post("/api/v1/check-runs/", {}, format="json").status_code == 403
    assert not CheckRun.objects.exists()


# Admin ---------------------------------------------------------------------------------------


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_admin_panel_shows_each_check_with_its_trend_and_runs_now(operator, fake_checks):
    fake_checks["bad"] = [1, 2, 3]
    services.checks_run(trigger="command", tags=["test"])
    client = _client(operator)
    page = client.get("/admin/integrity/checkrun/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-check="test.rows" data-status="fail"' in html and 'id="run-checks"' in html
    response = client.post("/admin/integrity/checkrun/run/", {"tag": "test"})
    run = CheckRun.objects.latest("pk")
    assert response.status_code == 302 and response["Location"].endswith(
        f"/admin/integrity/checkrun/{run.pk}/change/"
    )
    assert run.trigger == "admin" and run.triggered_by == operator
    detail = client.get(response["Location"]).content.decode()
    assert "row 1 is bad" in detail
    trend = client.get("/admin/integrity/checkrun/trend/test.rows/").content.decode()
    assert trend.count('data-status="fail"') == 2
    assert client.get("/admin/integrity/checkrun/trend/nope/").status_code == 404


def test_admin_explain_a_finding(approver, fake_checks):
    fake_checks["bad"] = [1]
    finding = services.checks_run(trigger="command", checks=["test.rows"]).findings.get()
    client = _client(approver)
    page = client.get(f"/admin/integrity/finding/{finding.pk}/change/").content.decode()
    assert "Explain this finding" in page
    form = client.get(f"/admin/integrity/finding/{finding.pk}/explain/")
    assert form.status_code == 200
    done = client.post(f"/admin/integrity/finding/{finding.pk}/explain/", {"reason": "known"})
    assert done.status_code == 302
    assert FindingExplanation.objects.get().explained_by == approver
    page = client.get(f"/admin/integrity/finding/{finding.pk}/change/").content.decode()
    assert "Withdraw the explanation" in page
    assert client.get(f"/admin/integrity/finding/{finding.pk}/withdraw/").status_code == 200
    client.post(f"/admin/integrity/finding/{finding.pk}/withdraw/")
    assert FindingExplanation.objects.get().withdrawn_by == approver


def test_auditor_reads_the_admin_but_cannot_run_or_explain(auditor, fake_checks):
    fake_checks["bad"] = [1]
    finding = services.checks_run(trigger="command", checks=["test.rows"]).findings.get()
    client = _client(auditor)
    page = client.get("/admin/integrity/checkrun/").content.decode()
    assert 'data-check="test.rows"' in page and 'id="run-checks"' not in page
    assert client.post("/admin/integrity/checkrun/run/", {"tag": "test"}).status_code == 403
    assert (
        "Explain this finding"
        not in client.get(f"/admin/integrity/finding/{finding.pk}/change/").content.decode()
    )
    assert (
        client.post(f"/admin/integrity/finding/{finding.pk}/explain/", {"reason": "x"}).status_code
        == 403
    )
    assert CheckRun.objects.count() == 1


def test_a_bogus_severity_filter_is_a_400(api, auditor):
    response = api.as_user(auditor).get("/api/v1/check-findings/?severity=nope")
    assert response.status_code == 400 and "severity" in response.json()["error"]["fields"]
