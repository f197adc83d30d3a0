"""Declared schedules: each app lists its jobs in `<app>/schedules.py` as `SCHEDULES`.

`sync_schedules` writes them to django-q2's Schedule table, keyed by name: new ones are
created, changed ones updated, ones no longer declared deleted. Schedules an operator added
by hand (functions outside our apps) are left alone, and a schedule an operator paused in the
admin (repeats = 0) stays paused.
"""

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from django.apps import apps
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from audit.services import audit_record

OUR_APPS = ("config", "finance", "integrity", "audit", "backups", "monitoring", "alerts")


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    func: str
    schedule_type: str = Schedule.CRON
    cron: str | None = None
    minutes: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def declared_jobs() -> list[ScheduledJob]:
    jobs: list[ScheduledJob] = []
    for config in apps.get_app_configs():
        if config.name not in OUR_APPS:
            continue
        try:
            module = import_module(f"{config.name}.schedules")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.schedules":
                raise
            continue
        jobs.extend(module.SCHEDULES)
    names = [j.name for j in jobs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"schedule names declared twice: {sorted(duplicates)}")
    return jobs


@dataclass
class SyncResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def _wanted(job: ScheduledJob) -> dict[str, Any]:
    return {
        "func": job.func,
        "schedule_type": job.schedule_type,
        "cron": job.cron,
        "minutes": job.minutes,
        "kwargs": repr(job.kwargs) if job.kwargs else "",
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
        ours = row.func.split(".", 1)[0] in OUR_APPS
        if ours and name not in declared:
            row.delete()
            result.deleted.append(name)
    if audited and (result.created or result.updated or result.deleted):
        # In metadata, not `changes`: that redacts by key, and job names say "key" innocently.
        audit_record(
            action="schedules.synced",
            object_type=Schedule._meta.label_lower,
            metadata={"created": result.created, "updated": updated, "deleted": result.deleted},
        )
    return result


def sync_after_migrate(sender, using: str = "default", plan=None, **kwargs) -> None:
    """post_migrate: write the declared schedules once django-q2's table exists."""
    from django.db import connections

    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return
    # Not audited: post_migrate also runs when the audit table is not migrated yet (a partial
    # migrate) and after every flush of a test database; `manage.py sync_schedules` (make run,
    # deploys) records what it changes.
    schedules_sync(audited=False)
