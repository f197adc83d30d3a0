"""Scheduled jobs declared as data: each app lists its jobs in `<app>/schedules.py` as
`SCHEDULES`, a list of `ScheduledJob`. `integrity.scheduling.schedules_sync` (the
`sync_schedules` command) writes them to django-q2's Schedule table."""

from dataclasses import dataclass, field
from typing import Any

from django_q.models import Schedule

from config.appconfig import project_modules


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
    jobs: list[ScheduledJob] = [
        job for module in project_modules("schedules") for job in module.SCHEDULES
    ]
    names = [j.name for j in jobs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"schedule names declared twice: {sorted(duplicates)}")
    return jobs


# The plumbing declares no jobs of its own (this module is also config's `<app>/schedules.py`).
SCHEDULES: list[ScheduledJob] = []
