from django.core.management.base import BaseCommand, CommandError

from audit.services import SigningKeyMissing, checkpoint_create


class Command(BaseCommand):
    help = "Sign the audit chain head now (the schedule does this hourly)."

    def handle(self, *args, **options):
        try:
            checkpoint = checkpoint_create()
        except SigningKeyMissing as exc:
            raise CommandError(str(exc), returncode=1) from exc
        if checkpoint is None:
            self.stdout.write("No new events since the last checkpoint.")
        else:
            self.stdout.write(f"Checkpoint at #{checkpoint.sequence}: {checkpoint.location}")
