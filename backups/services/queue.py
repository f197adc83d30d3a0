"""Backups and drills asked for by a person (API, admin): the row now, the work on a worker."""

from typing import Any

from django.db import transaction
from django_q import tasks as q_tasks

from backups.models import Backup, RestoreDrill
from backups.services.backup import backup_start
from backups.services.drill import drill_start


def backup_queue(*, actor: Any, trigger: str) -> Backup:
    """A RUNNING backup row; a worker takes and verifies it once this commits."""
    backup = backup_start(actor=actor, trigger=trigger)
    transaction.on_commit(
        lambda: q_tasks.async_task(
            "backups.tasks.backup_and_verify", backup.pk, task_name=f"backup-{backup.pk}"
        )
    )
    return backup


def drill_queue(*, backup: Backup, actor: Any, trigger: str) -> RestoreDrill:
    """A RUNNING drill row; a worker runs it once this commits."""
    drill = drill_start(backup=backup, actor=actor, trigger=trigger)
    transaction.on_commit(
        lambda: q_tasks.async_task(
            "backups.tasks.restore_drill", drill.pk, task_name=f"drill-{drill.pk}"
        )
    )
    return drill
