"""manage.py daily_stats [--date D]: the day's statistics per route and per task, from the
minute buckets, and the database's and its largest tables' growth, from the snapshots
(yesterday, UTC, by default); running it again replaces the day's rows."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from monitoring import selectors, services
from monitoring.models import DailyStorage
from monitoring.templatetags.monitoring_admin import signed_size


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date {value!r}: give a day as YYYY-MM-DD", returncode=2) from None


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) - timedelta(
        microseconds=1
    )


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
        self._storage(day)

    def _storage(self, day: date) -> None:
        rows = list(DailyStorage.objects.filter(day=day).order_by("-bytes", "table"))
        if not rows:
            self.stdout.write("  storage: no snapshot that day (metrics_snapshot makes them)")
            return
        found = selectors.storage_trend(now=_end_of(day))
        trend = {g.table: g for g in [found.database, *found.tables] if g is not None}
        for row in rows[:6]:
            slope = trend[row.table].bytes_per_day if row.table in trend else None
            line = (
                f"  storage: {row.table or '(whole database)'}  {filesizeformat(row.bytes)}, "
                f"{signed_size(row.growth_bytes)} that day, trend {signed_size(slope)}/day"
            )
            self.stdout.write(line.replace("\xa0", " "))  # filesizeformat's no-break spaces
        days = found.days_until_disk_full
        if days is None:
            self.stdout.write(
                "  disk full: no forecast yet (it needs six hours of snapshots in the last week)"
            )
        elif days >= selectors.NEVER_FULL_DAYS:
            self.stdout.write("  disk full: never at the last week's trend (not shrinking)")
        elif days is not None:
            self.stdout.write(f"  disk full in: {days:.1f} days at the last week's trend")
