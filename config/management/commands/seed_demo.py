"""A believable small company, Northwind Supplies Ltd: its people, and a year of history in
every part of the system (config/demo.py collects each app's `demo.py`)."""

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from config.demo import DemoContext, declared_seeders
from config.roles import ROLE_NAMES, sync_roles

DEMO_PASSWORD = "ledgerguard-demo"  # noqa: S105 - a published demo login, local use only

USERS = [
    # username, first name, role, superuser
    ("admin", "Ada", "admin", True),
    ("clerk", "Carl", "finance_clerk", False),
    ("approver", "Alice", "finance_approver", False),
    ("auditor", "Otto", "auditor", False),
    ("operator", "Opal", "operator", False),
]


class Command(BaseCommand):
    help = (
        "Seed a demo company: its users, a chart of accounts, periods, and DAYS of history "
        "(postings, check runs, alerts, metrics, backups) ending today."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=365,
            help="How many days of history, ending today (default 365; at least 7).",
        )

    def handle(self, *args, **options):
        days = max(7, options["days"])
        context = DemoContext(
            today=timezone.localdate(), now=timezone.now(), days=days, users=self._users()
        )
        for seeder in declared_seeders():
            self.stdout.write(seeder.seed(context))
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded Northwind Supplies ({days} days). Log in as admin / {DEMO_PASSWORD}."
            )
        )

    @transaction.atomic
    def _users(self) -> dict:
        User = get_user_model()
        if Group.objects.filter(name__in=ROLE_NAMES).count() < len(ROLE_NAMES):
            sync_roles(apps, None)  # a flushed database has lost the roles its migration wrote
        users = {}
        for username, first, role, superuser in USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "email": f"{username}@northwind.example",
                    "is_staff": True,
                    "is_superuser": superuser,
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            user.groups.add(Group.objects.get(name=role))
            users[username] = user
        return users
