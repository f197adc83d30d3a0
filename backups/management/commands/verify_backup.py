"""manage.py verify_backup (ID|latest) [--restore-test [--target-time T]]: checksum and archive
(or the pgBackRest stanza), and a drill, of a set to a point in time if asked."""

from argparse import ArgumentTypeError
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import selectors, services
from backups.models import Backup, RestoreDrill
from config.errors import DomainError


def aware_time(value: str) -> datetime:
    """An ISO 8601 time with its timezone (`2025-01-31T14:05:00+00:00`, or `...Z`)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ArgumentTypeError(f"{value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise ArgumentTypeError(f"{value!r} has no timezone (add +00:00, or Z for UTC)")
    return parsed


class Command(BaseCommand):
    help = (
        "Verify a stored backup (its SHA-256 and archive, or for pgBackRest its set in the "
        "stanza and `pgbackrest verify`); optionally run a restore drill."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup", help="A backup id, or 'latest'.")
        parser.add_argument(
            "--restore-test", action="store_true", help="Also run a restore drill of it."
        )
        parser.add_argument(
            "--target-time",
            type=aware_time,
            help="With --restore-test, for a pgBackRest backup: recover the copy to this moment "
            "(ISO 8601 with a timezone, e.g. 2025-01-31T14:05:00+00:00) instead of the set's "
            "stop point.",
        )

    def handle(
        self,
        *args: Any,
        backup: str,
        restore_test: bool,
        target_time: datetime | None,
        **options: Any,
    ) -> None:
        if target_time is not None and not restore_test:
            raise CommandError("--target-time is for a drill: add --restore-test", returncode=2)
        target = _find(backup)
        try:
            if restore_test:
                # Refused before the verification, which can take long.
                services.check_drill(backup=target, target_time=target_time)
            services.backup_verify(backup=target)
            if target.status == Backup.Status.UNVERIFIED:
                self.stdout.write(
                    f"backup #{target.pk} reads back ({_what(target)}) but stays unverified: "
                    f"{target.verification_error} (a passing --restore-test clears it)"
                )
            else:
                self.stdout.write(f"backup #{target.pk} verified ({_what(target)})")
            if restore_test:
                drill = services.drill_run(
                    drill=services.drill_start(backup=target, target_time=target_time)
                )
                self.stdout.write(_drill_passed(drill))
        except DomainError as exc:
            raise CommandError(exc.message, returncode=1) from None


def _what(backup: Backup) -> str:
    if backup.engine == Backup.Engine.PGBACKREST:
        return f"pgBackRest set {backup.label} in {backup.storage}"
    return f"sha256 {backup.sha256}"


def _drill_passed(drill: RestoreDrill) -> str:
    to = f" to {drill.target_time.isoformat()}" if drill.target_time else ""
    return (
        f"restore drill #{drill.pk}{to} passed: restore {drill.restore_seconds:.1f} s, "
        f"checks {drill.checks_seconds:.1f} s"
    )


def _find(ref: str) -> Backup:
    if ref == "latest":
        found = selectors.latest_stored_backup()
        if found is None:
            raise CommandError("no stored backup to verify", returncode=1)
        return found
    # ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and "٣" (which
    # int() reads as 3, naming a backup the operator never typed).
    if not (ref.isascii() and ref.isdigit()):
        raise CommandError(f"{ref!r}: give a backup id or 'latest'", returncode=2)
    try:
        return Backup.objects.get(pk=int(ref))
    except Backup.DoesNotExist:
        raise CommandError(f"no backup #{ref}", returncode=1) from None
