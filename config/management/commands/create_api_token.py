from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from config.errors import DomainError
from config.tokens import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="CLI token")
        parser.add_argument("--days", type=int, default=None, help="Lifetime in days.")

    def handle(self, *args, username, name, days, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
        try:
            token, raw = api_token_create(user=user, name=name, ttl_days=days)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(f"Token {token.prefix} for {user} expires {token.expires_at:%Y-%m-%d}.")
        self.stdout.write(raw)
