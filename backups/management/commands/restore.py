"""manage.py restore ID --database-url URL [--force]: real recovery into a target database."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import services
from backups.models import Backup
from config.errors import DomainError


class Command(BaseCommand):
    help = (
        "Restore a stored backup into the database at --database-url (disaster recovery). "
        "Refuses a target that already holds tables unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup", type=int, help="The backup's id (manage.py shell, API).")
        parser.add_argument(
            "--database-url",
            required=True,
            help="The target, in DATABASE_URL's format (sqlite:///path, postgres://...).",
        )
        parser.add_argument(
            "--force", action="store_true", help="Restore over a target that is not empty."
        )

    def handle(
        self, *args: Any, backup: int, database_url: str, force: bool, **options: Any
    ) -> None:
        try:
            found = Backup.objects.get(pk=backup)
        except Backup.DoesNotExist:
            raise CommandError(f"no backup #{backup}", returncode=1) from None
        try:
            seconds = services.backup_restore(backup=found, database_url=database_url, force=force)
        except DomainError as exc:
            raise CommandError(exc.message, returncode=1) from None
        self.stdout.write(f"backup #{found.pk} restored in {seconds:.1f} s")
