"""Checks about the backups control (the check registry): a recent verified backup (the
recovery point objective) and a recent passed restore drill."""

from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from backups.models import Backup, BackupStatus, RestoreDrill
from config.registry import CheckContext, Finding, register


@register("backups.last_backup_recent", tag="backups", severity="critical", explainable=False)
def last_backup_recent(ctx: CheckContext) -> Iterator[Finding]:
    """The newest verified backup is younger than the recovery point objective
    (BACKUP_RPO_HOURS).

    Older, and a disaster now would lose more than the objective allows: backups stopped, or
    every recent one failed to verify."""
    limit = timedelta(hours=settings.BACKUP_RPO_HOURS)
    newest = (
        Backup.objects.filter(status=BackupStatus.VERIFIED, snapshot_at__isnull=False)
        .order_by("-snapshot_at")
        .first()
    )
    if newest is None:
        yield Finding(message="no verified backup exists", key="none")
        return
    age = timezone.now() - newest.snapshot_at  # type: ignore[operator]  # filtered not null
    if age > limit:
        yield Finding(
            message=f"the newest verified backup (#{newest.pk}) is {age.total_seconds() / 3600:.1f}"
            f" h old (objective {settings.BACKUP_RPO_HOURS} h)",
            object_type=Backup._meta.label_lower,
            object_id=str(newest.pk),
            key="age",
            details={"age_hours": round(age.total_seconds() / 3600, 1)},
            identity={"backup": newest.pk},
        )


@register("backups.drill_recent", tag="backups", severity="error", explainable=False)
def drill_recent(ctx: CheckContext) -> Iterator[Finding]:
    """A restore drill passed within BACKUP_DRILL_MAX_AGE_DAYS (the weekly drill plus a day).

    Without one, nobody knows how long recovery takes or whether the backups restore."""
    limit = timedelta(days=settings.BACKUP_DRILL_MAX_AGE_DAYS)
    newest = (
        RestoreDrill.objects.filter(status=RestoreDrill.Status.PASSED)
        .order_by("-finished_at")
        .first()
    )
    if newest is None or newest.finished_at is None:
        yield Finding(message="no restore drill has passed yet", key="none")
        return
    age = timezone.now() - newest.finished_at
    if age > limit:
        yield Finding(
            message=f"the last passed restore drill (#{newest.pk}) is {age.days} days old "
            f"(limit {settings.BACKUP_DRILL_MAX_AGE_DAYS})",
            object_type=RestoreDrill._meta.label_lower,
            object_id=str(newest.pk),
            key="age",
            identity={"drill": newest.pk},
        )
