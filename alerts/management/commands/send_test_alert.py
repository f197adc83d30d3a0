from django.core.management.base import BaseCommand, CommandError

from alerts.models import Channel
from alerts.services import alert_send_test
from config.errors import DomainError


class Command(BaseCommand):
    help = (
        "Deliver a test alert synchronously, end to end: to --to, or to the first step of the "
        "route a critical alert would take. Exits 1 when any delivery fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("--channel", choices=Channel.values)
        parser.add_argument("--to", help="An email address, phone number or webhook URL.")

    def handle(self, *args, channel, to, **options):
        try:
            results = alert_send_test(channel=channel, to=to)
        except DomainError as exc:  # a --to the outbound rules refuse
            raise CommandError(f"{exc.code}: {exc.message}", returncode=2) from exc
        if not results:
            raise CommandError(
                "No target to send to: pass --to, or set up a route with targets "
                "(admin: Alerts > Routes, Escalation policies, Targets)."
            )
        failed = 0
        for where, outcome in results:
            self.stdout.write(f"{where}: {outcome}")
            failed += outcome.startswith("failed")
        if failed:
            raise CommandError(f"{failed} of {len(results)} deliveries failed.")
