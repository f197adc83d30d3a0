import getpass
import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from config.errors import DomainError
from integrity import selectors, services
from integrity.models import DeadLetter


class Command(BaseCommand):
    help = "Operate the dead-letter queue: list, retry ID, retry-all, discard ID."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="Open dead letters (or --all).")
        listing.add_argument("--all", action="store_true")
        listing.add_argument("--json", action="store_true")
        retry = sub.add_parser("retry", help="Retry one dead letter now.")
        retry.add_argument("id", type=int)
        sub.add_parser("retry-all", help="Retry every pending or failed dead letter now.")
        discard = sub.add_parser("discard", help="Discard one dead letter.")
        discard.add_argument("id", type=int)
        discard.add_argument("--reason", required=True)
        for p in (retry, discard):
            p.add_argument("--as", dest="username", help="Record the action as this user.")
        sub.choices["retry-all"].add_argument("--as", dest="username")

    def handle(self, *args, action, **options):
        actor = None
        self.note = f"command line, OS user {getpass.getuser()}"
        if options.get("username"):
            try:
                actor = get_user_model().objects.get(username=options["username"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"No user {options['username']!r}.") from None
        if action == "list":
            return self._list(options["all"], options["json"])
        if action == "retry":
            return self._retry([self._get(options["id"])], actor)
        if action == "retry-all":
            letters = selectors.deadletter_list().filter(
                status__in=[DeadLetter.Status.PENDING, DeadLetter.Status.FAILED]
            )
            return self._retry(list(letters.order_by("pk")), actor)
        letter = self._get(options["id"])
        try:
            services.deadletter_discard(
                dead_letter=letter, actor=actor, reason=options["reason"], note=self.note
            )
        except DomainError as exc:
            raise CommandError(f"[{exc.code}] {exc.message}") from exc
        self.stdout.write(f"#{letter.pk} discarded.")

    def _get(self, pk: int) -> DeadLetter:
        try:
            return DeadLetter.objects.get(pk=pk)
        except DeadLetter.DoesNotExist:
            raise CommandError(f"No dead letter #{pk}.") from None

    def _list(self, everything: bool, as_json: bool) -> None:
        letters = selectors.deadletter_list().order_by("pk")
        if not everything:
            letters = letters.exclude(status__in=["resolved", "discarded"])
        rows: list[dict[str, Any]] = [
            {
                "id": d.pk,
                "status": d.status,
                "kind": d.kind,
                "operation": d.operation,
                "attempts": f"{d.attempts}/{d.max_attempts}",
                "created": d.created_at.isoformat(),
                "next_retry": d.next_retry_at.isoformat() if d.next_retry_at else "",
                "error": d.error[:100],
            }
            for d in letters
        ]
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No dead letters.")
        for r in rows:
            self.stdout.write(
                f"#{r['id']:<5} {r['status']:<9} {r['attempts']:<5} {r['operation']:<40} "
                f"{r['created'][:19]}  {r['error']}"
            )

    def _retry(self, letters: list[DeadLetter], actor) -> None:
        failed = 0
        for letter in letters:
            try:
                result = services.deadletter_retry(dead_letter=letter, actor=actor, note=self.note)
            except DomainError as exc:
                self.stderr.write(f"#{letter.pk}: [{exc.code}] {exc.message}")
                failed += 1
                continue
            self.stdout.write(f"#{letter.pk}: {result.status}")
            failed += result.status != DeadLetter.Status.RESOLVED
        if failed:
            raise CommandError(f"{failed} dead letter(s) still not resolved.")
