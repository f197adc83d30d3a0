from django.core.management.base import BaseCommand, CommandError

from audit import witness
from audit.exceptions import SigningKeyMissing
from audit.models import Checkpoint
from audit.services import checkpoint_create


class Command(BaseCommand):
    help = (
        "Sign the audit chain head now (the schedule does this hourly). With --publish, send "
        "the newest checkpoint to the witness now, again if its copy had failed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--publish",
            action="store_true",
            help="Send copies to the checkpoint witness now (AUDIT_CHECKPOINT_WITNESS_*), "
            "retrying the newest checkpoint's failed ones.",
        )

    def handle(self, *args, publish, **options):
        try:
            checkpoint = checkpoint_create()
        except SigningKeyMissing as exc:
            raise CommandError(str(exc), returncode=1) from exc
        if checkpoint is None:
            self.stdout.write("No new events since the last checkpoint.")
        else:
            self.stdout.write(f"Checkpoint at #{checkpoint.sequence}: {checkpoint.location}")
        if publish:
            self._publish()

    def _publish(self) -> None:
        if not witness.witness_channels():
            raise CommandError("No checkpoint witness is configured (docs/audit.md).")
        newest = Checkpoint.objects.order_by("-sequence").first()
        if newest is not None:
            witness.publications_retry(checkpoint=newest)
        outcomes = witness.publications_send_due()
        summary = ", ".join(f"{count} {outcome}" for outcome, count in outcomes.items())
        self.stdout.write(f"Witness: {summary or 'nothing to send'}")
        if outcomes.get("failed") or outcomes.get("retry"):
            raise CommandError("Not every copy reached the witness; see the checkpoint's page.")
