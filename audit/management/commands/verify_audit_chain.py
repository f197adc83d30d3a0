import getpass
import json

from django.core.management.base import BaseCommand, CommandError

from audit.models import VerificationStatus
from audit.services import InvalidRange, chain_verify


class Command(BaseCommand):
    help = (
        "Verify the audit hash chain (all of it, or --from/--to) and the signed checkpoints. "
        "Exit status 1 and the first bad event id when broken."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="from_id", type=int)
        parser.add_argument("--to", dest="to_id", type=int)
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, from_id, to_id, **options):
        if (from_id is not None and from_id < 1) or (from_id and to_id and to_id < from_id):
            raise CommandError("--from must be at least 1 and --to not below --from")
        by = f"manage.py verify_audit_chain ({getpass.getuser()})"
        try:
            v = chain_verify(from_id=from_id, to_id=to_id, triggered_by=by)
        except InvalidRange as exc:
            raise CommandError(exc.message, returncode=2) from exc
        if options["json"]:
            self.stdout.write(json.dumps({
                "verification": v.pk, "status": v.status, "events_checked": v.events_checked,
                "checkpoints_checked": v.checkpoints_checked, "first_bad_id": v.first_bad_id,
                "problems": v.problems,
            }, indent=2))  # fmt: skip
        else:
            for problem in v.problems:
                self.stdout.write(f"  {problem['code']}: {problem['message']}")
            self.stdout.write(
                f"{v.events_checked} events and {v.checkpoints_checked} checkpoint copies "
                f"(database and backup storage) checked: {v.get_status_display()}"
            )
        if v.status == VerificationStatus.BROKEN:
            raise CommandError(f"audit chain broken at event {v.first_bad_id}", returncode=1)
        if v.status != VerificationStatus.OK:
            raise CommandError("audit checkpoints disagree with the chain", returncode=1)
