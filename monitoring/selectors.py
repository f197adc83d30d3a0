"""Read-side queries of the monitoring app."""

from datetime import datetime

from django.db.models import QuerySet

from monitoring.models import DatabaseSnapshot


def database_snapshot_list(
    *, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[DatabaseSnapshot]:
    """Snapshots taken at or after `since` and before `until` (either open), oldest first."""
    snapshots = DatabaseSnapshot.objects.all()
    if since is not None:
        snapshots = snapshots.filter(taken_at__gte=since)
    if until is not None:
        snapshots = snapshots.filter(taken_at__lt=until)
    return snapshots.order_by("taken_at", "pk")


def database_snapshot_latest() -> DatabaseSnapshot | None:
    """The newest snapshot, or None before the first."""
    return DatabaseSnapshot.objects.order_by("-taken_at", "-pk").first()
