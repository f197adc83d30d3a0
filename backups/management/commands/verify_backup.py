"""manage.py verify_backup (ID|latest) [--restore-test]: checksum and archive, and a drill."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import selectors, services
from backups.models import Backup
from config.errors import DomainError


class Command(BaseCommand):
    help = "Verify a stored backup (its SHA-256 and archive); optionally run a restore drill."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup", help="A backup id, or 'latest'.")
        parser.add_argument(
            "--restore-test", action="store_true", help="Also run a restore drill of it."
        )

    def handle(self, *args: Any, backup: str, restore_test: bool, **options: Any) -> None:
        target = _find(backup)
        try:
            services.backup_verify(backup=target)
            self.stdout.write(f"backup #{target.pk} verified (sha256 {target.sha256})")
            if restore_test:
                drill = services.drill_run(drill=services.drill_start(backup=target))
                self.stdout.write(
                    f"restore drill #{drill.pk} passed: restore {drill.restore_seconds:.1f} s, "
                    f"checks {drill.checks_seconds:.1f} s"
                )
        except DomainError as exc:
            raise CommandError(exc.message, returncode=1) from None


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
