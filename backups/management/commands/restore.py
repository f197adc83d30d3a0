"""manage.py restore ID --database-url URL [--force]: real recovery into a target database."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import services
from backups.services import catalog
from config.errors import DomainError


class Command(BaseCommand):
    help = (
        "Restore a stored backup into the database at --database-url (disaster recovery). "
        "Refuses a target that already holds tables unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup", type=int, nargs="?", help="The backup's id (see --list).")
        parser.add_argument(
            "--list",
            dest="list_only",
            action="store_true",
            help="List the backups in storage (from their manifests), newest first, and exit.",
        )
        parser.add_argument(
            "--database-url",
            help="The target, in DATABASE_URL's format (sqlite:///path, postgres://...).",
        )
        parser.add_argument(
            "--force", action="store_true", help="Restore over a target that is not empty."
        )
        parser.add_argument(
            "--allow-unverified",
            action="store_true",
            help="Restore a backup whose verification or drill failed (when it is all there "
            "is); recorded in the audit event.",
        )
        parser.add_argument(
            "--checkpoints-dir",
            type=Path,
            help="Write the audit checkpoints that travelled with the backup here (to verify "
            "the restored chain with verify_audit_chain --checkpoints).",
        )

    def handle(
        self,
        *args: Any,
        backup: int | None,
        list_only: bool,
        database_url: str | None,
        force: bool,
        allow_unverified: bool,
        checkpoints_dir: Path | None,
        **options: Any,
    ) -> None:
        try:
            self._handle(backup, list_only, database_url, force, allow_unverified, checkpoints_dir)
        except DomainError as exc:
            raise CommandError(exc.message, returncode=1) from None

    def _handle(
        self,
        backup: int | None,
        list_only: bool,
        database_url: str | None,
        force: bool,
        allow_unverified: bool,
        checkpoints_dir: Path | None,
    ) -> None:
        if list_only:
            listing = catalog.read_catalog()
            for m in listing.manifests:
                self.stdout.write(
                    _printable(
                        f"#{m['id']}  {m['started_at']}  {m['engine']}  {m['size_bytes']} bytes"
                        f"  sha256 {m['sha256'][:16] or '-'}  {m['location'] or m['label']}"
                    )
                )
            for name, why in listing.refused:
                self.stderr.write(_printable(f"skipped {name}: {why}"))
            return
        if backup is None or not database_url:
            raise CommandError("give a backup id and --database-url (or --list)", returncode=2)
        found = catalog.find_backup(backup)
        if found is None:
            raise CommandError(f"no backup #{backup} in the database or in storage", returncode=1)
        seconds = services.backup_restore(
            backup=found,
            database_url=database_url,
            force=force,
            allow_unverified=allow_unverified,
            checkpoints_dir=checkpoints_dir,
        )
        self.stdout.write(f"backup #{found.pk} restored in {seconds:.1f} s")
        if checkpoints_dir is not None:
            self.stdout.write(f"its audit checkpoints are in {checkpoints_dir}")


def _printable(text: str) -> str:
    """`text` with control characters (a terminal's escape sequences) shown as escapes: names
    read from storage are not trusted to be harmless on a terminal."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
