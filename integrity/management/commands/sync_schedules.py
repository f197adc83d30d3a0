from django.core.management.base import BaseCommand

from integrity.scheduling import schedules_sync


class Command(BaseCommand):
    help = "Write the schedules declared in each app's schedules.py to django-q2 (idempotent)."

    def handle(self, *args, **options):
        result = schedules_sync()
        for label in ("created", "updated", "deleted", "unchanged"):
            names = getattr(result, label)
            if names:
                self.stdout.write(f"{label}: {', '.join(names)}")
        if result.foreign:
            self.stdout.write(
                self.style.WARNING(
                    "not declared by any app (left alone; delete them unless you made them): "
                    + ", ".join(result.foreign)
                )
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"schedules in sync ({len(result.created)} created, {len(result.updated)} "
                f"updated, {len(result.deleted)} deleted, {len(result.unchanged)} unchanged)"
            )
        )
