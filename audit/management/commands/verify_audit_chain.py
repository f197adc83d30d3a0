import getpass
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.exceptions import InvalidRange
from audit.models import VerificationStatus
from audit.services import chain_verify


class Command(BaseCommand):
    help = (
        "Verify the audit hash chain (all of it, or --from/--to) and the signed checkpoints. "
        "Exit status 1 and the first bad event id when broken."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="from_id", type=int)
        parser.add_argument("--to", dest="to_id", type=int)
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
        parser.add_argument(
            "--checkpoints",
            metavar="DIR",
            type=Path,
            help="Also check the checkpoint files in DIR (any *.json below it), such as the "
            "copies the checkpoint witness received.",
        )

    def handle(self, *args, from_id, to_id, checkpoints, **options):
        if (from_id is not None and from_id < 1) or (from_id and to_id and to_id < from_id):
            raise CommandError("--from must be at least 1 and --to not below --from")
        if checkpoints is not None and not checkpoints.is_dir():
            raise CommandError(f"--checkpoints {checkpoints}: not a directory", returncode=2)
        by = f"manage.py verify_audit_chain ({getpass.getuser()})"
        if checkpoints is not None:
            by += f" --checkpoints {checkpoints}"
        try:
            v = chain_verify(
                from_id=from_id, to_id=to_id, triggered_by=by, checkpoints_dir=checkpoints
            )
        except InvalidRange as exc:
            raise CommandError(exc.message, returncode=2) from exc
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "verification": v.pk,
                        "status": v.status,
                        "events_checked": v.events_checked,
                        "checkpoints_checked": v.checkpoints_checked,
                        "first_bad_id": v.first_bad_id,
                        "problems": v.problems,
                    },
                    indent=2,
                )
            )
        else:
            for problem in v.problems:
                self.stdout.write(f"  {problem['code']}: {problem['message']}")
            where = "database and backup storage"
            if checkpoints:
                where = f"database, backup storage and {checkpoints}"
            self.stdout.write(
                f"{v.events_checked} events and {v.checkpoints_checked} checkpoint copies "
                f"({where}) checked: {v.get_status_display()}"
            )
        if v.status == VerificationStatus.BROKEN:
            raise CommandError(f"audit chain broken at event {v.first_bad_id}", returncode=1)
        if v.status != VerificationStatus.OK:
            raise CommandError("audit checkpoints disagree with the chain", returncode=1)
