"""Database and host snapshots: every five minutes, what the database and its host look like."""

from pathlib import Path

from django.conf import settings
from django.db import connections

from monitoring.dbmetrics import metrics_for
from monitoring.hostmetrics import host_figures
from monitoring.models import DatabaseSnapshot


def database_snapshot_take(*, using: str = "default") -> DatabaseSnapshot:
    """Read the database `using` and this host, and store one snapshot.

    The figures are read before the row is written and outside any transaction, so a slow
    statistics view holds no lock; reading writes nothing, and a figure that cannot be read is
    left empty with a note (figures["notes"]) rather than failing the snapshot."""
    database = metrics_for(connections[using]).collect(connections[using])
    places: list[tuple[str, Path]] = []
    if database.volume_path is not None:
        places.append(("database", Path(database.volume_path)))
    if not settings.BACKUP_S3_BUCKET:
        places.append(("backups", Path(settings.BACKUP_DIR)))
    host, host_notes = host_figures(places)
    database_volume = next((v for v in host["volumes"] if "database" in v["roles"]), None)
    return DatabaseSnapshot.objects.using(using).create(
        engine=database.engine,
        database_bytes=database.database_bytes,
        connections_total=database.connections_total,
        cache_hit_ratio=database.cache_hit_ratio,
        deadlocks=database.deadlocks,
        disk_free_ratio=database_volume["free_ratio"] if database_volume else None,
        figures={**database.figures, "notes": [*database.notes, *host_notes]},
        host=host,
    )
