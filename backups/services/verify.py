"""Verifying a stored backup: re-read the object and compare its SHA-256, unpack it (which
authenticates an encrypted one), and read the archive back (pg_restore -l, or PRAGMA
integrity_check on a copy). A pgBackRest set: `pgbackrest info` still lists it and
`pgbackrest verify` finds the repository intact. Optionally, a restore drill on top."""

from typing import Any, NoReturn

from django.db import transaction
from django.utils import timezone

from backups import crypto, storage
from backups.engines import engine_named
from backups.exceptions import BackupCorrupt, BackupFailed, BackupNotRestorable
from backups.models import Backup, BackupStatus
from backups.services import physical
from backups.services.common import (
    VERIFICATION_FAILED,
    alert,
    move_status,
    one_line,
    record,
    resolve,
    workdir,
)

RESTORABLE = (BackupStatus.COMPLETED, BackupStatus.VERIFIED, BackupStatus.UNVERIFIED)
# How a failed drill's reason begins on the backup (drill.py): set, a checksum alone does not
# make the backup verified again.
DRILL_PREFIX = "drill #"


def backup_verify(*, backup: Backup, actor: Any = None) -> Backup:
    """Prove the stored backup reads back as written. Raises BackupError (the backup is marked
    unverified and an alert raised) when it does not."""
    if backup.status not in RESTORABLE:
        raise BackupNotRestorable(f"Backup #{backup.pk} is {backup.status}: nothing to verify.")
    try:
        if backup.engine == Backup.Engine.PGBACKREST:
            proof = physical.set_check(backup)
        else:
            proof = _archive_check(backup)
    except Exception as exc:  # noqa: BLE001 - every failure marks the backup and alerts
        verification_failed(backup, exc, actor, step="verify")
    if backup.verification_error.startswith(DRILL_PREFIX):
        # The object reads back, but a restore of it failed its checks: only a passing drill
        # makes it verified again.
        record("backup.verified", backup, actor, still_unverified_by_drill=True, **proof)
        return backup
    with transaction.atomic():
        if not move_status(
            backup,
            BackupStatus.VERIFIED,
            only_from=RESTORABLE,
            verified_at=timezone.now(),
            verification_error="",
        ):
            raise BackupNotRestorable(
                f"Backup #{backup.pk} became {backup.status} while it was verified."
            )
        record("backup.verified", backup, actor, **proof)
    resolve(VERIFICATION_FAILED)
    return backup


def _archive_check(backup: Backup) -> dict[str, Any]:
    """The stored object's SHA-256 is the recorded one, it unpacks, and the archive reads back;
    what the audit event records of it."""
    engine = engine_named(backup.engine)
    with workdir("verify") as work:
        fetched = work / "fetched.lgb"
        sha256 = storage.fetch(backup.location, fetched)
        if sha256 != backup.sha256:
            raise BackupCorrupt(
                f"SHA-256 of the stored object is {sha256}, the backup recorded {backup.sha256}"
            )
        archive = work / f"archive{engine.suffix}"
        crypto.unpack(fetched, archive, refuse_plain=crypto.encryption_key() is not None)
        report = engine.check_archive(archive)
        if not report.ok:
            raise BackupCorrupt(f"the archive does not read back: {report.detail}")
    return {"entries": report.entries}


def verification_failed(backup: Backup, exc: BaseException, actor: Any, *, step: str) -> NoReturn:
    """Mark the backup unverified, record and alert; raises BackupError."""
    reason = one_line(exc)
    with transaction.atomic():
        if not move_status(
            backup,
            BackupStatus.UNVERIFIED,
            only_from=RESTORABLE,
            verification_error=f"{step}: {reason}",
        ):
            # Retention removed it meanwhile: a missing object is then no finding.
            raise BackupNotRestorable(
                f"Backup #{backup.pk} became {backup.status} while it was verified."
            ) from exc
        record("backup.verification_failed", backup, actor, step=step, error=reason)
    alert(
        VERIFICATION_FAILED,
        f"Backup #{backup.pk} failed verification ({step}): {reason}",
        {"backup": backup.pk, "step": step, "error": reason, "location": backup.location},
    )
    raise BackupFailed(f"backup #{backup.pk} failed verification ({step}): {reason}") from exc
