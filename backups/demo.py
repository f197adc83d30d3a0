"""The demo's backups (config/demo.py, `manage.py seed_demo`): the context's days of daily
backups and weekly restore drills as history, and, once every other seeder has run, one real
backup of the demo database, verified, through the services.

No service back-dates: `backup_start` and `drill_start` stamp the present, and taking or
drilling a backup copies a real database. So the history rows are written directly
(bulk_create), without audit events (the trail is the services' to write, never the demo's).
Their stored objects were never written: every history backup is PRUNED (retention's status:
the row stays, the object is gone), or FAILED, so nothing later tries to verify, drill or
download a file that does not exist (`services.RESTORABLE` holds neither).

The trouble in it: a backup that failed (the storage was full), one that failed verification,
a drill that restored slower than the recovery time objective, one whose copy differed, and
the latest drill, two days ago, failed: the Overview's tile is red until a drill passes.
"""

from datetime import UTC, date, datetime, time, timedelta

from django.utils import timezone

from backups import services
from backups.exceptions import BackupError
from backups.models import Backup, BackupStatus, RestoreDrill
from backups.services.common import selected_engine
from config.demo import DemoContext, DemoHistory

MB = 1_000_000
# Today's size (as stored, compressed: the demo's books are small); the history grows to it.
SIZE_TODAY = 2 * MB
BACKUP_AT = time(3, 0)  # BACKUP_CRON's default, local time
DRILL_AT = time(4, 0)


def seed_backups(ctx: DemoContext) -> str:
    if Backup.objects.exists() or RestoreDrill.objects.exists():
        return "Backups: there are backups already; nothing added."
    engine = selected_engine()
    backups = _backups(ctx, engine, SIZE_TODAY)
    by_day = {timezone.localtime(b.started_at).date(): b for b in backups}
    drills = _drills(ctx, by_day)
    return (
        f"Backups: {len(backups)} daily backups and {len(drills)} weekly drills as history "
        f"(objects pruned)."
    )


def seed_real_backup(ctx: DemoContext) -> str:
    """Last of all the seeders (after audit's checkpoint): the backup then holds everything
    the demo wrote, and the checkpoints that travel with it match it, so a drill of it passes.
    (Taken before the checkpoint, its drill found a checkpoint the copy did not hold.)"""
    if Backup.objects.exclude(status__in=(BackupStatus.PRUNED, BackupStatus.FAILED)).exists():
        return "Backups: a stored backup exists already; no real one taken."
    _real, said = _real_backup(selected_engine())
    return f"Backups: {said}."


DEMO = [
    DemoHistory(name="backups.history", order=70, seed=seed_backups),
    DemoHistory(name="backups.real", order=95, seed=seed_real_backup),
]


def _at(day: date, at: time) -> datetime:
    return timezone.make_aware(datetime.combine(day, at))


def _size(ctx: DemoContext, day: date, size_today: int) -> int:
    """The books grow through the year: a year ago a little under half of today's size."""
    age = (ctx.today - day).days
    return int(size_today * (1 - 0.55 * age / 365) * ctx.rnd.uniform(0.98, 1.02))


def _backups(ctx: DemoContext, engine: str, size_today: int) -> list[Backup]:
    days = [ctx.start + timedelta(days=n) for n in range(1, ctx.days + 1)]
    days = [d for d in days if _at(d, BACKUP_AT) < ctx.now - timedelta(minutes=30)]
    failed = days[len(days) * 2 // 5] if len(days) > 20 else None
    corrupt = days[len(days) * 7 // 10] if len(days) > 20 else None
    rows = []
    for day in days:
        started = _at(day, BACKUP_AT) + timedelta(seconds=ctx.rnd.randint(0, 20))
        size = _size(ctx, day, size_today)
        # The scheduled job's start-up, the checkpoints and the manifest, and the copy itself.
        seconds = (3 + size / (4 * MB)) * ctx.rnd.uniform(0.9, 1.4)
        finished = started + timedelta(seconds=seconds)
        utc = started.astimezone(UTC)
        row = Backup(
            engine=engine,
            status=BackupStatus.PRUNED,
            trigger=Backup.Trigger.SCHEDULE,
            started_at=started,
            finished_at=finished,
            snapshot_at=started + timedelta(seconds=2),
            size_bytes=size,
            sha256=f"{ctx.rnd.getrandbits(256):064x}",
            storage="FileSystemStorage",
            location=f"{utc:%Y/%m}/{utc:%Y%m%dT%H%M%SZ}-demo-{engine}.lgb",
            compressed=True,
            verified_at=finished + timedelta(seconds=ctx.rnd.randint(8, 30)),
            # The demo wrote no objects: pruned as it was seeded.
            pruned_at=ctx.now,
        )
        if day == failed:
            row.status, row.size_bytes, row.sha256, row.snapshot_at = (
                BackupStatus.FAILED,
                None,
                "",
                None,
            )
            row.verified_at, row.pruned_at, row.location = None, None, ""
            row.finished_at = started + timedelta(seconds=24)
            row.error = (
                "backup.storage_failed: the backup storage refused the upload: "
                "[Errno 28] No space left on device"
            )
        elif day == corrupt:
            row.verified_at = None
            row.verification_error = (
                "verify: backup.corrupt: SHA-256 of the stored object differs from the one "
                "the backup recorded"
            )
        rows.append(row)
    return Backup.objects.bulk_create(rows, batch_size=500)


def _drills(ctx: DemoContext, by_day: dict[date, Backup]) -> list[RestoreDrill]:
    """Weekly, the newest verified backup of the day is restored into a scratch database."""
    ages = range(2, ctx.days, 7)
    slow = ages[len(ages) * 3 // 4] if len(ages) > 8 else None
    differed = ages[len(ages) // 2] if len(ages) > 8 else None
    rows = []
    for age in ages:
        day = ctx.today - timedelta(days=age)
        backup = next(
            (
                by_day[d]
                for d in (day - timedelta(days=n) for n in range(3))
                if d in by_day and by_day[d].verified_at is not None
            ),
            None,
        )
        if backup is None or backup.snapshot_at is None or backup.size_bytes is None:
            continue
        started = _at(day, DRILL_AT)
        # A scratch database made, the archive unpacked and restored, its indexes built.
        restore = (180 + 60 * backup.size_bytes / MB) * ctx.rnd.uniform(0.85, 1.15)
        if age == slow:
            restore = 68 * 60.0  # the scratch server shared with month-end reporting
        checks = ctx.rnd.uniform(40, 90)
        rows_held = backup.size_bytes // 150  # about 150 bytes a row, compressed
        drill = RestoreDrill(
            backup=backup,
            status=RestoreDrill.Status.PASSED,
            trigger=Backup.Trigger.SCHEDULE,
            started_at=started,
            finished_at=started + timedelta(seconds=restore + checks),
            restore_seconds=round(restore, 1),
            checks_seconds=round(checks, 1),
            recovery_point_seconds=(started - backup.snapshot_at).total_seconds(),
            results={
                "restored": {"tables": 14, "rows": rows_held},
                "checks": {"status": "pass", "failing": []},
                "audit": {"status": "ok"},
            },
        )
        if age == 2:
            drill.status, drill.failed_step = RestoreDrill.Status.FAILED, "restore"
            drill.restore_seconds = drill.checks_seconds = None
            drill.finished_at = started + timedelta(seconds=310)
            drill.results = {}
            drill.error = (
                "backup.failed: the restore ran out of space: [Errno 28] No space left on "
                "device (the drill's scratch volume, BACKUP_WORK_DIR)"
            )
        elif age == differed:
            drill.status, drill.failed_step = RestoreDrill.Status.FAILED, "compare"
            drill.checks_seconds = None
            drill.results = {
                "row_counts": {
                    "finance_journalline": {"expected": rows_held, "restored": rows_held - 2}
                }
            }
            drill.error = "the restored copy differs from the backup: finance_journalline rows"
        rows.append(drill)
    rows.reverse()  # oldest first, so that numbers grow with time as the services' do
    return RestoreDrill.objects.bulk_create(rows, batch_size=500)


def _real_backup(engine: str) -> tuple[Backup | None, str]:
    """One real backup of the demo database, verified, so that the newest backup can be
    drilled and downloaded. Only with SQLite's engine: with PostgreSQL (pg_dump, pgBackRest)
    `seed_demo` also runs inside tests (tests/config/test_db_roles.py, the pgBackRest and
    recovery tests) that take their own backups and expect none before."""
    if engine != Backup.Engine.SQLITE:
        return None, (
            f"no real backup taken with {engine} (PostgreSQL): "
            "`manage.py backup --verify` takes one"
        )
    try:
        backup = services.backup_create(trigger=Backup.Trigger.COMMAND)
        backup = services.backup_verify(backup=backup)
    except BackupError as exc:
        return None, f"the real backup failed: {exc.message}"
    return backup, f"a real backup #{backup.pk} of the demo database, {backup.status}"
