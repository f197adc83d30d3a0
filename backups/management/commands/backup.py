"""manage.py backup [--verify] [--restore-test]: take a backup now (exit 1 on failure)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import services
from backups.exceptions import BackupError
from backups.models import Backup


class Command(BaseCommand):
    help = "Take a backup of the database now; optionally verify it and run a restore drill."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--verify", action="store_true", help="Verify it after taking it.")
        parser.add_argument(
            "--restore-test",
            action="store_true",
            help="Also restore it into a scratch database and check it (implies --verify).",
        )

    def handle(self, *args: Any, verify: bool, restore_test: bool, **options: Any) -> None:
        try:
            backup = services.backup_create(trigger=Backup.Trigger.COMMAND)
            if backup.engine == Backup.Engine.PGBACKREST:
                where = f"pgBackRest set {backup.label} in {backup.storage}"
            else:
                where = f"sha256 {backup.sha256}, at {backup.location}"
            self.stdout.write(
                f"backup #{backup.pk} {backup.engine}: {backup.size_bytes} bytes in "
                f"{backup.duration_seconds:.1f} s, {where}"
            )
            if verify or restore_test:
                services.backup_verify(backup=backup)
                self.stdout.write(f"backup #{backup.pk} verified")
            if restore_test:
                drill = services.drill_run(drill=services.drill_start(backup=backup))
                self.stdout.write(
                    f"restore drill #{drill.pk} passed: restore {drill.restore_seconds:.1f} s, "
                    f"checks {drill.checks_seconds:.1f} s"
                )
        except BackupError as exc:
            raise CommandError(exc.message, returncode=1) from None
