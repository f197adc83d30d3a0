"""Scheduled jobs declared as data: each app lists its jobs in `<app>/schedules.py` as
`SCHEDULES`, a list of `ScheduledJob`. `integrity.scheduling.schedules_sync` (the
`sync_schedules` command) writes them to django-q2's Schedule table."""

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from django_q.models import Schedule

from config.appconfig import project_apps


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
    for config in project_apps():
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


# The plumbing declares no jobs of its own (this module is also config's `<app>/schedules.py`).
SCHEDULES: list[ScheduledJob] = []
