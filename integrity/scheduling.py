"""Declared schedules: each app lists its jobs in `<app>/schedules.py` as `SCHEDULES`.

`sync_schedules` writes them to django-q2's Schedule table, keyed by name: new ones are
created, changed ones updated, ones no longer declared deleted. Every field that decides what
runs (function, arguments, hook, cluster, schedule) is restored to its declaration; only a pause
(repeats = 0) set in the admin survives. Schedules of functions outside our apps (made in a
shell) are left alone but named in the result, so that an operator sees them.

The admin may pause, resume and reschedule a schedule (the services below), nothing more: what
code a job runs is declared here, never typed into a form.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, transaction
from django.utils import timezone
from django_q.models import Schedule

from audit.services import audit_record, diff, snapshot
from config.appconfig import project_app_labels
from config.schedules import ScheduledJob, declared_jobs


@dataclass
class SyncResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)


def _wanted(job: ScheduledJob) -> dict[str, Any]:
    """Every field that decides what runs, where and when, as the job declares it."""
    return {
        "func": job.func,
        "args": None,
        "kwargs": repr(job.kwargs) if job.kwargs else "",
        "hook": None,
        "cluster": None,
        "intended_date_kwarg": None,
        "schedule_type": job.schedule_type,
        "cron": job.cron,
        "minutes": job.minutes,
    }


@transaction.atomic
def schedules_sync(*, jobs: list[ScheduledJob] | None = None, audited: bool = True) -> SyncResult:
    """Write the declared jobs; one `schedules.synced` audit event when anything changed.

    `audited=False` only for the post_migrate hook (see `sync_after_migrate`).
    """
    jobs = declared_jobs() if jobs is None else jobs
    result = SyncResult()
    updated: dict[str, dict[str, list[Any]]] = {}
    existing = {s.name: s for s in Schedule.objects.select_for_update().order_by("pk")}
    for job in jobs:
        wanted = _wanted(job)
        row = existing.get(job.name)
        if row is None:
            Schedule.objects.create(name=job.name, repeats=-1, next_run=timezone.now(), **wanted)
            result.created.append(job.name)
            continue
        changed = [k for k, v in wanted.items() if (getattr(row, k) or None) != (v or None)]
        if row.repeats not in (0, -1):  # paused (0) or forever (-1); nothing else is declared
            wanted["repeats"] = -1
            changed.append("repeats")
        if not changed:
            result.unchanged.append(job.name)
            continue
        updated[job.name] = {k: [getattr(row, k), wanted[k]] for k in changed}
        for k in changed:
            setattr(row, k, wanted[k])
        fields = list(changed)
        if {"cron", "minutes", "schedule_type"} & set(changed):
            row.next_run = timezone.now()  # django-q2 computes the next slot after this run
            fields.append("next_run")
        row.save(update_fields=fields)
        result.updated.append(job.name)
    declared = {j.name for j in jobs}
    for name, row in existing.items():
        if name in declared:
            continue
        if row.func.split(".", 1)[0] in project_app_labels():
            row.delete()
            result.deleted.append(name)
        else:
            result.foreign.append(f"{name or row.pk}: {row.func}")
    if audited and (result.created or result.updated or result.deleted):
        # In metadata, not `changes`: that redacts by key, and job names say "key" innocently.
        audit_record(
            action="schedules.synced",
            object_type=Schedule._meta.label_lower,
            metadata={
                "created": result.created,
                "updated": updated,
                "deleted": result.deleted,
                **({"foreign": result.foreign} if result.foreign else {}),
            },
        )
    return result


# Which declared schedules are not running as declared -------------------------------------

# Slack over a schedule's next slot before a later next run counts as postponed.
POSTPONE_MARGIN = timedelta(minutes=5)


def schedule_state(schedule: Schedule, *, now: datetime | None = None) -> str:
    """The schedule is "active", "paused" (repeats 0) or "postponed" (next run moved past its
    next slot)."""
    if schedule.repeats == 0:
        return "paused"
    now = now or timezone.now()
    late = _next_slot_from(schedule, now) + POSTPONE_MARGIN
    if schedule.next_run is not None and schedule.next_run > late:
        return "postponed"
    return "active"


def schedules_held_back(*, now: datetime | None = None) -> list[dict[str, Any]]:
    """Declared schedules that will not run when declared: missing from the table, paused in
    the admin, or with a next run moved past their next slot. Pausing or postponing is allowed
    (and audited), but it can silence alert delivery, checkpoints and checks, so it must show.
    """
    now = now or timezone.now()
    jobs = declared_jobs()
    rows = {s.name: s for s in Schedule.objects.filter(name__in=[j.name for j in jobs])}
    held: list[dict[str, Any]] = []
    for job in jobs:
        row = rows.get(job.name)
        state = "missing" if row is None else schedule_state(row, now=now)
        if state != "active":
            held.append({"name": job.name, "state": state, "next_run": row and row.next_run})
    return held


def _next_slot_from(schedule: Schedule, now: datetime) -> datetime:
    if schedule.schedule_type == Schedule.CRON:
        return schedule.calculate_next_run()  # the cron's next slot after now
    return schedule.calculate_next_run(now)  # now plus one interval


# What the admin may do to a schedule ---------------------------------------------------


def next_slot(schedule: Schedule, *, after: datetime) -> datetime:
    """The schedule's first run time after `after` (cron slots follow the expression)."""
    if schedule.schedule_type == Schedule.CRON:
        return schedule.calculate_next_run()
    slot = schedule.next_run or after
    while slot <= after:
        slot = schedule.calculate_next_run(slot)
    return slot


def _schedule_changed(schedule: Schedule, *, before: dict[str, Any], action: str) -> None:
    audit_record(
        action=action,
        obj=schedule,
        changes=diff(before, snapshot(schedule, ["repeats", "next_run"])),
        metadata={"name": schedule.name or "", "func": schedule.func},
    )


@transaction.atomic
def schedule_pause(*, schedule: Schedule) -> Schedule:
    """Stop a schedule from running (django-q2 skips repeats = 0); sync keeps the pause."""
    schedule = Schedule.objects.select_for_update().get(pk=schedule.pk)
    if schedule.repeats == 0:
        return schedule
    before = snapshot(schedule, ["repeats", "next_run"])
    schedule.repeats = 0
    schedule.save(update_fields=["repeats"])
    _schedule_changed(schedule, before=before, action="schedule.paused")
    return schedule


@transaction.atomic
def schedule_resume(*, schedule: Schedule) -> Schedule:
    """Run a paused schedule again from its next slot (missed runs are not caught up)."""
    schedule = Schedule.objects.select_for_update().get(pk=schedule.pk)
    if schedule.repeats != 0:
        return schedule
    before = snapshot(schedule, ["repeats", "next_run"])
    schedule.repeats = -1
    schedule.next_run = next_slot(schedule, after=timezone.now())
    schedule.save(update_fields=["repeats", "next_run"])
    _schedule_changed(schedule, before=before, action="schedule.resumed")
    return schedule


@transaction.atomic
def schedule_reschedule(*, schedule: Schedule, next_run: datetime) -> Schedule:
    """Move a schedule's next run (now, to run it at once; or later, to hold it off)."""
    schedule = Schedule.objects.select_for_update().get(pk=schedule.pk)
    before = snapshot(schedule, ["repeats", "next_run"])
    schedule.next_run = next_run
    schedule.save(update_fields=["next_run"])
    _schedule_changed(schedule, before=before, action="schedule.rescheduled")
    return schedule


def sync_after_migrate(sender, using: str = "default", plan=None, **kwargs) -> None:
    """post_migrate: write the declared schedules once django-q2's table exists."""
    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return
    # Not audited: post_migrate also runs when the audit table is not migrated yet (a partial
    # migrate) and after every flush of a test database; `manage.py sync_schedules` (make run,
    # deploys) records what it changes.
    schedules_sync(audited=False)
