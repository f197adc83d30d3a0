"""pgBackRest physical backups in the services (BACKUP_ENGINE=pgbackrest): the stanza's driver
and the database its cluster serves, from settings; a backup set taken and described for its
row, the stanza checked for it, and the set restored for a drill.

Ledgerguard does not replace pgBackRest: the set stays in pgBackRest's repository, checksummed
and expired by pgBackRest; only the manifest and the signed audit checkpoints go to the backup
storage, as with the archive engines (backups/services/backup.py stores them).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings

from backups.engines import KEY_TABLES, target_for
from backups.engines.base import DatabaseTarget
from backups.engines.pgbackrest import PgBackRest, inspect
from backups.exceptions import BackupCorrupt, BackupMisconfigured
from backups.models import Backup
from backups.services.common import RestoredCopy, Taken


def stanza() -> PgBackRest:
    """The driver of the configured stanza (BACKUP_PGBACKREST_STANZA, _CONFIG)."""
    name = settings.BACKUP_PGBACKREST_STANZA
    if not name:
        raise BackupMisconfigured(
            "BACKUP_ENGINE is pgbackrest but BACKUP_PGBACKREST_STANZA is not set"
        )
    try:
        return PgBackRest(name, config_path=settings.BACKUP_PGBACKREST_CONFIG or None)
    except ValueError as exc:
        raise BackupMisconfigured(f"BACKUP_PGBACKREST_STANZA: {exc}") from None


def stanza_database() -> DatabaseTarget:
    """The database the stanza's cluster serves: BACKUP_PGBACKREST_DATABASE_URL, else the
    application's own. Its row counts are recorded with each set, and drills open it."""
    url = settings.BACKUP_PGBACKREST_DATABASE_URL
    try:
        target = DatabaseTarget.from_url(url) if url else target_for("default")
    except ValueError as exc:
        raise BackupMisconfigured(f"BACKUP_PGBACKREST_DATABASE_URL: {exc}") from None
    if target.vendor != "postgresql":
        raise BackupMisconfigured(
            f"pgBackRest backs up PostgreSQL, and the database to back up is {target.vendor}: "
            "leave BACKUP_ENGINE empty, or point BACKUP_PGBACKREST_DATABASE_URL at PostgreSQL"
        )
    return target


def set_take(backup: Backup) -> Taken:
    """`pgbackrest backup` of BACKUP_PGBACKREST_TYPE; the set's label becomes the backup's
    location. Row counts, schema and audit head are read from the database just before the
    set starts (backups/engines/pgbackrest.py, PhysicalSnapshot)."""
    driver, source = stanza(), stanza_database()
    snapshot = driver.backup(settings.BACKUP_PGBACKREST_TYPE, source=source, key_tables=KEY_TABLES)
    made = snapshot.backup_set
    backup.location = made.label
    return Taken(
        snapshot=snapshot,
        database=snapshot.database or source.name,
        size=made.repo_size,
        sha256="",  # pgBackRest checksums every file of the set itself (verify re-reads them)
        storage=f"pgbackrest:{driver.stanza}"[: Backup._meta.get_field("storage").max_length],
        extra={
            "stanza": driver.stanza,
            "backup_type": made.type,
            "prior": made.prior,
            "database_size": made.size,
            "wal_start": made.wal_start,
            "wal_stop": made.wal_stop,
            "pg_version": made.pg_version,
            "counted_at": snapshot.counted_at,
        },
    )


def set_check(backup: Backup) -> dict[str, Any]:
    """The stanza still lists the backup's set, without page errors, and `pgbackrest verify`
    finds every file of the repository (all sets and the archived WAL) intact. Raises
    BackupCorrupt (or the driver's error, when pgBackRest cannot run) when not."""
    driver = stanza()
    sets = {s.label: s for s in driver.info()}
    found = sets.get(backup.label)
    if found is None:
        raise BackupCorrupt(
            f"pgbackrest info (stanza {driver.stanza}) does not list backup set {backup.label}: "
            "expired by pgBackRest's retention, or removed"
        )
    if found.error:
        raise BackupCorrupt(
            f"pgBackRest found page checksum errors while taking backup set {backup.label}"
        )
    report = driver.verify()
    if not report.ok:
        raise BackupCorrupt(report.detail)
    return {"label": backup.label, "sets": len(sets)}


@contextmanager
def set_restored(backup: Backup, target_time: datetime | None) -> Iterator[RestoredCopy]:
    """The backup's set restored and started as a temporary server (as of its stop point, or
    recovered to `target_time`), for as long as the block runs; then stopped and removed. It
    goes under BACKUP_WORK_DIR (it needs room for the whole database)."""
    driver, source = stanza(), stanza_database()
    with driver.restore_drill(
        label=backup.label,
        target_time=target_time,
        database=backup.database or source.name,
        user=source.user or "postgres",
        work_dir=settings.BACKUP_WORK_DIR or None,
        timeout=float(settings.BACKUP_DRILL_TIMEOUT_SECONDS),
    ) as target:
        details: dict[str, Any] = {"label": target.label}
        if target_time is not None:
            details["target_time"] = target_time.isoformat()
        yield RestoredCopy(
            target=target,
            restore_seconds=target.restore_seconds,
            snapshot=inspect(target, KEY_TABLES),
            details=details,
        )
