"""Backups and drills asked for by a person (API, admin): the row now, the work on a worker."""

from typing import Any

from django.db import transaction
from django_q import tasks as q_tasks

from backups.exceptions import BackupNotRestorable
from backups.models import Backup, RestoreDrill
from backups.services.backup import backup_start
from backups.services.common import record
from backups.services.drill import drill_start
from backups.services.verify import RESTORABLE


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


def verify_queue(*, backup: Backup, actor: Any) -> Backup:
    """Verification on a worker (it re-reads the whole object, too long for a request): the
    backup must have something stored; the audit event says who asked."""
    if backup.status not in RESTORABLE:
        raise BackupNotRestorable(f"Backup #{backup.pk} is {backup.status}: nothing to verify.")
    with transaction.atomic():
        record("backup.verify_requested", backup, actor)
        transaction.on_commit(
            lambda: q_tasks.async_task(
                "backups.tasks.verify",
                backup.pk,
                getattr(actor, "pk", None),
                task_name=f"verify-{backup.pk}",
            )
        )
    return backup
