"""manage.py prune_backups [--dry-run]: apply retention, never the newest verified backup."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import services
from config.errors import DomainError


class Command(BaseCommand):
    help = "Apply retention (BACKUP_KEEP_DAILY/WEEKLY/MONTHLY) and say what was removed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be removed; remove nothing."
        )

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        try:
            if not dry_run:
                for line in services.backups_sweep():
                    self.stdout.write(line)
            result = services.backups_prune(dry_run=dry_run)
        except DomainError as exc:
            raise CommandError(exc.message, returncode=1) from None
        verb = "would remove" if dry_run else "removed"
        for pk in result.removed:
            self.stdout.write(f"{verb} backup #{pk}")
        for pk, why in sorted(result.kept.items()):
            self.stdout.write(f"kept backup #{pk} ({', '.join(why)})")
        for name in result.leftovers:
            self.stdout.write(f"left in storage (remove by hand): {name}")
        self.stdout.write(f"{len(result.removed)} {verb}, {len(result.kept)} kept")
        if result.failed:
            for pk, reason in sorted(result.failed.items()):
                self.stderr.write(f"could not remove backup #{pk}: {reason}")
            raise CommandError(
                f"{len(result.failed)} backup(s) could not be removed; they stay for the next run",
                returncode=1,
            )
