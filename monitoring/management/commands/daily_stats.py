"""manage.py daily_stats [--date D]: the day's statistics per route and per task, from the
minute buckets (yesterday, UTC, by default); running it again replaces the day's rows."""

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from monitoring import services


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date {value!r}: give a day as YYYY-MM-DD", returncode=2) from None


class Command(BaseCommand):
    help = "Make the day's statistics (p50/p95/p99, counts, errors) per route and per task."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="The UTC day, YYYY-MM-DD (default: yesterday).")

    def handle(self, *args: Any, date: str | None, **options: Any) -> None:
        day = _day(date) if date else timezone.now().date() - timedelta(days=1)
        rows = services.daily_stats_compute(day)
        routes = [r for r in rows if r.kind == "route"]
        tasks = [r for r in rows if r.kind == "task"]
        requests = sum(r.count for r in routes)
        errors = sum(r.errors for r in routes)
        self.stdout.write(
            f"{day}: {len(routes)} routes, {requests} requests, {errors} errors (5xx); "
            f"{len(tasks)} tasks, {sum(t.count for t in tasks)} runs, "
            f"{sum(t.errors for t in tasks)} failed"
        )
        slowest = sorted((r for r in routes if r.p95 is not None), key=lambda r: -(r.p95 or 0))
        for row in slowest[:5]:
            self.stdout.write(
                f"  slowest: {row.method} {row.name}  p95 {row.p95 * 1000:.1f} ms "  # type: ignore[operator]
                f"({row.count} requests)"
            )
