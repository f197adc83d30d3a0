"""django-q2 jobs of the backups control: thin wrappers over the services."""

from typing import Any

from django.contrib.auth import get_user_model

from backups import services
from backups.exceptions import BackupBusy, BackupFailed
from backups.models import Backup, BackupStatus, RestoreDrill


def backup_and_verify(backup_id: int | None = None) -> dict[str, Any]:
    """The daily job (or an API/admin request's backup row): take it, then verify it."""
    if backup_id is None:
        services.backups_sweep()  # a backup whose worker died no longer blocks the next
        backup = services.backup_start(trigger=Backup.Trigger.SCHEDULE)
    else:
        backup = Backup.objects.get(pk=backup_id)
    # django-q presents a failed task again (ack_failures=False), and may hand a job out again
    # while its first run still goes: a row that has moved on is not taken twice. Only a
    # RUNNING row this worker takes (services.lease) is taken, and a COMPLETED one verified
    # (a copy of the job that arrives during the verification verifies it too: two reads);
    # a row an earlier worker died in is first completed from its manifest, or cleared of
    # what that worker stored.
    if backup.status == BackupStatus.RUNNING:
        taken = _take(backup, f"backup #{backup.pk}")
        if taken == "taken-after-dead-worker":
            backup = services.backup_reclaim(backup=backup)
        if taken == "ended":
            backup.refresh_from_db()
    if backup.status == BackupStatus.RUNNING:
        backup = services.backup_take(backup=backup)
    if backup.status == BackupStatus.COMPLETED:
        backup = services.backup_verify(backup=backup)
    return {"backup": backup.pk, "status": backup.status}


def restore_drill(drill_id: int | None = None) -> dict[str, Any]:
    """The weekly drill of the newest good backup (or an API/admin request's drill row)."""
    if drill_id is None:
        backup = services.newest_good_backup()
        if backup is None:
            raise BackupFailed("no backup to drill: take one first")
        drill = services.drill_start(backup=backup, trigger=Backup.Trigger.SCHEDULE)
    else:
        drill = RestoreDrill.objects.get(pk=drill_id)
    # A drill that has ended is not run again when django-q presents its failed task again:
    # its outcome, times and audit event stand (a re-run re-stamped a failed drill, which then
    # looked newer than a later passing one). A new drill is a new row. One worker at a time
    # runs it (services.lease); one that died in it left it RUNNING, and it is run again.
    if drill.status == RestoreDrill.Status.RUNNING and _take(drill, f"drill #{drill.pk}") in (
        "taken",
        "taken-after-dead-worker",
    ):
        drill = services.drill_run(drill=drill)
    drill.refresh_from_db()
    return {"drill": drill.pk, "status": drill.status, "restore_seconds": drill.restore_seconds}


def _take(row: Backup | RestoreDrill, name: str) -> services.Taken:
    """This worker takes the row, or the job fails for now while another worker holds it
    (django-q tries it again after Q_RETRY, when that worker has ended or died)."""
    taken = services.row_take(row)
    if taken == "held":
        raise BackupBusy(
            f"{name} is held by another worker until {services.held_until(row)}; "
            "this job is tried again later"
        )
    return taken


def prune() -> dict[str, Any]:
    """The daily retention run; first, backups and drills whose worker died are failed."""
    swept = services.backups_sweep()
    result = services.backups_prune()
    if result.failed:
        raise BackupFailed(f"retention could not remove backups: {result.failed}")
    return {"swept": swept, "removed": result.removed, "kept": sorted(result.kept)}


def verify(backup_id: int, actor_id: int | None = None) -> dict[str, Any]:
    """A verification asked for by a person (API, admin), recorded as theirs."""
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    backup = services.backup_verify(backup=Backup.objects.get(pk=backup_id), actor=actor)
    return {"backup": backup.pk, "status": backup.status}
