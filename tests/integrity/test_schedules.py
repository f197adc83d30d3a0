from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from config.schedules import ScheduledJob, declared_jobs
from integrity.scheduling import schedules_sync
from integrity.services import checks_run
from tests.integrity.factories import ScheduleFactory


def test_declared_jobs_are_written_once(db):
    call_command("sync_schedules")
    call_command("sync_schedules")
    names = set(Schedule.objects.values_list("name", flat=True))
    assert names == {job.name for job in declared_jobs()}
    assert "integrity.purge_expired_idempotency_keys" in names


def test_changed_updated_removed_deleted_and_foreign_kept(db):
    ScheduleFactory(name="operator's own", func="math.sqrt", schedule_type=Schedule.DAILY)
    jobs = [
        ScheduledJob(
            name="a",
            func="integrity.tasks.purge_expired_idempotency_keys",
            schedule_type=Schedule.CRON,
            cron="0 2 * * *",
        ),
        ScheduledJob(
            name="b",
            func="integrity.tasks.purge_expired_idempotency_keys",
            schedule_type=Schedule.HOURLY,
        ),
    ]
    result = schedules_sync(jobs=jobs)
    assert sorted(result.created) == ["a", "b"]
    jobs[0] = ScheduledJob(
        name="a", func=jobs[0].func, schedule_type=Schedule.CRON, cron="30 3 * * *"
    )
    result = schedules_sync(jobs=jobs[:1])
    assert result.updated == ["a"] and result.deleted == ["b"]
    assert Schedule.objects.get(name="a").cron == "30 3 * * *"
    assert Schedule.objects.filter(name="operator's own").exists()


def test_operator_pause_survives_sync(db):
    call_command("sync_schedules")
    Schedule.objects.filter(name="integrity.purge_expired_idempotency_keys").update(repeats=0)
    call_command("sync_schedules")
    assert Schedule.objects.get(name="integrity.purge_expired_idempotency_keys").repeats == 0


def test_migrate_writes_the_declared_schedules(db):
    # The test database was built by `migrate`; its post_migrate step synced the schedules.
    assert Schedule.objects.filter(name="integrity.purge_expired_idempotency_keys").exists()


# Held-back schedules show ---------------------------------------------------------------


def _check_findings():
    run = checks_run(trigger="command", checks=["integrity.schedules_running"])
    return run, sorted(f.key for f in run.findings.all())


def test_a_paused_or_postponed_schedule_fails_the_check_and_warns_in_readiness(db, client):
    call_command("sync_schedules")
    run, keys = _check_findings()
    assert keys == [] and run.status == "pass"
    Schedule.objects.filter(name="alerts.escalate_alerts").update(repeats=0)
    Schedule.objects.filter(name="audit.checkpoint").update(
        next_run=timezone.now() + timedelta(days=30000)
    )
    Schedule.objects.filter(name="checks.integrity").delete()
    run, keys = _check_findings()
    assert keys == [
        "alerts.escalate_alerts:paused",
        "audit.checkpoint:postponed",
        "checks.integrity:missing",
    ]
    body = client.get("/health/ready").json()
    assert body["status"] == "degraded" and body["checks"]["schedules"]["status"] == "warn"
    call_command("sync_schedules")  # the missing one comes back; a pause stays
    Schedule.objects.filter(name="alerts.escalate_alerts").update(repeats=-1)
    Schedule.objects.filter(name="audit.checkpoint").update(next_run=timezone.now())
    run, keys = _check_findings()
    assert keys == []
