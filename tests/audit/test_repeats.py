"""Events anyone can cause at will are bounded: per address and reason, the first few in a
window are recorded in full, the rest counted and summed up in one event when the window
closes. The trail stays append-only and the evidence stays."""

import datetime as dt

from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule
from rest_framework.test import APIClient

from audit.models import AuditEvent, RepeatCounter, Verification, VerificationStatus
from audit.selectors import audit_user_activity
from audit.services import audit_record_repeatable, repeats_summarize
from audit.tasks import summarize_repeats

LATER = dt.timedelta(minutes=30)


def _bogus(n: int, ip: str = "203.0.113.9") -> None:
    client = APIClient(REMOTE_ADDR=ip)
    for _ in range(n):
        response = client.get("/api/v1/accounts/", HTTP_AUTHORIZATION="Bearer lg_nope_nope")
        assert response.status_code == 401


def test_bogus_tokens_beyond_the_limit_are_counted_not_recorded(db, settings):
    settings.AUDIT_REPEAT_LIMIT = 3
    _bogus(50)
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 3
    counter = RepeatCounter.objects.exclude(ip="*").get()
    assert (counter.reason, counter.ip, counter.recorded, counter.suppressed) == (
        "auth.login_failed:token",
        "203.0.113.9",
        3,
        47,
    )


def test_each_address_and_reason_has_its_own_allowance(db, settings, clerk):
    settings.AUDIT_REPEAT_LIMIT = 2
    _bogus(5, ip="203.0.113.1")
    _bogus(5, ip="203.0.113.2")
    client = APIClient(REMOTE_ADDR="203.0.113.1")
    for _ in range(4):
        client.post("/api/v1/auth/token/", {"username": "x", "password": "y"}, format="json")
    failed = AuditEvent.objects.filter(action="auth.login_failed")
    assert failed.filter(metadata__method="token").count() == 4  # two addresses, two each
    assert failed.filter(metadata__method="password").count() == 2


def test_a_closed_window_becomes_one_summary_event(db, settings):
    settings.AUDIT_REPEAT_LIMIT = 1
    _bogus(10)
    assert repeats_summarize() == 0  # the window is still open
    written = repeats_summarize(now=timezone.now() + LATER)
    assert written == 1
    summary = AuditEvent.objects.get(action="audit.repeats_summarized")
    meta = summary.metadata
    assert (meta["reason"], meta["ip"], meta["recorded"], meta["count"]) == (
        "auth.login_failed:token",
        "203.0.113.9",
        1,
        9,
    )
    assert meta["by"] == {"(unknown)": 9}
    assert not RepeatCounter.objects.exists()
    assert repeats_summarize(now=timezone.now() + LATER) == 0  # safe to run twice


def test_denials_and_failed_logins_keep_who_in_the_summary(db, settings, clerk):
    settings.AUDIT_REPEAT_LIMIT = 1
    client = APIClient(REMOTE_ADDR="198.51.100.4")
    for name in ["clerk"] * 3 + ["ghost"] * 2:
        client.post("/api/v1/auth/token/", {"username": name, "password": "bad"}, format="json")
    denied = APIClient(REMOTE_ADDR="198.51.100.4")
    denied.force_authenticate(clerk)
    for _ in range(4):
        assert denied.post("/api/v1/accounts/", {}, format="json").status_code == 403
    repeats_summarize(now=timezone.now() + LATER)
    summaries = {
        e.metadata["reason"]: e.metadata
        for e in AuditEvent.objects.filter(action="audit.repeats_summarized")
    }
    assert summaries["auth.login_failed:password"]["by"] == {"clerk": 2, "ghost": 2}
    assert summaries["access.denied"]["by"] == {f"#{clerk.pk}": 3}
    activity = audit_user_activity(user_id=clerk.pk)
    assert activity["failed_logins"] == 3  # one recorded in full, two counted
    assert activity["access_denials"] == 4


def test_names_beyond_the_limit_count_as_others(db, settings):
    settings.AUDIT_REPEAT_LIMIT = 0
    for i in range(25):
        audit_record_repeatable(action="auth.login_failed", reason="r", who=f"u{i}")
    by = RepeatCounter.objects.get(reason="r", ip="").by
    assert len(by) == 21 and by["(others)"] == 5 and sum(by.values()) == 25


def test_the_summary_job_is_declared_and_runs(db, settings):
    settings.AUDIT_REPEAT_LIMIT = 0
    _bogus(2)
    RepeatCounter.objects.update(window_start=timezone.now() - LATER)
    assert summarize_repeats() == 1
    call_command("sync_schedules")
    assert Schedule.objects.get(name="audit.summarize_repeats").minutes == 1


def test_the_trail_stays_a_verifiable_chain(db, settings):
    settings.AUDIT_REPEAT_LIMIT = 2
    _bogus(20)
    repeats_summarize(now=timezone.now() + LATER)
    assert AuditEvent.objects.count() == 3  # two in full, one summary
    call_command("verify_audit_chain")
    assert Verification.objects.get().status == VerificationStatus.OK


def test_rotating_ipv6_addresses_in_one_64_is_one_client(db, settings):
    settings.AUDIT_REPEAT_LIMIT = 2
    for i in range(30):
        _bogus(1, ip=f"2001:db8:1:2::{i:x}")
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 2
    counter = RepeatCounter.objects.exclude(ip="*").get()
    assert (counter.ip, counter.suppressed) == ("2001:db8:1:2::/64", 28)


def test_rotating_many_addresses_meets_the_overall_limit(db, settings):
    settings.AUDIT_REPEAT_LIMIT = 2
    settings.AUDIT_REPEAT_GLOBAL_LIMIT = 10
    for i in range(40):
        _bogus(1, ip=f"198.51.100.{i}")
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 10
    overall = RepeatCounter.objects.get(ip="*")
    assert (overall.recorded, overall.suppressed) == (10, 30)
    assert len(overall.by) == 21 and sum(overall.by.values()) == 30
    assert repeats_summarize(now=timezone.now() + LATER) == 1  # one event for the 30
    summary = AuditEvent.objects.get(action="audit.repeats_summarized").metadata
    assert (summary["ip"], summary["count"]) == ("*", 30)
