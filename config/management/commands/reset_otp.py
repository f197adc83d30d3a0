from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from config.twofactor.services import otp_devices_reset


class Command(BaseCommand):
    help = (
        "Delete a user's two-factor devices (authenticator and recovery codes): they set up "
        "their second factor again at their next login. For a superuser, whom no admin may "
        "reset in the admin. Audited as auth.otp_reset by 'system'."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--reason", default="", help="Kept in the audit event.")

    def handle(self, *args, username, reason, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
        removed = otp_devices_reset(target=user, reason=reason or "manage.py reset_otp")
        self.stdout.write(f"Reset {removed} device(s) of {user}; they enrol again at next login.")
