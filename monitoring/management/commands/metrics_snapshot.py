"""manage.py metrics_snapshot: store a database and host snapshot and summarise it."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from monitoring.services import database_snapshot_take


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class Command(BaseCommand):
    help = "Store a snapshot of the database's and the host's figures and print a summary."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            snapshot = database_snapshot_take()
        except (DatabaseError, OSError, NotImplementedError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CommandError(f"no snapshot taken: {reason}", returncode=1) from None
        connections = (
            "n/a" if snapshot.connections_total is None else str(snapshot.connections_total)
        )
        disk = (
            "n/a (not on this host)"
            if snapshot.disk_free_ratio is None
            else f"{snapshot.disk_free_ratio:.1%}"
        )
        self.stdout.write(
            f"snapshot #{snapshot.pk}: engine {snapshot.engine}, "
            f"database {_size(snapshot.database_bytes)}, connections {connections}, "
            f"disk free {disk}"
        )
        for volume in snapshot.host.get("volumes", []):
            self.stdout.write(
                f"  {' and '.join(volume['roles'])} volume "
                f"({', '.join(volume['paths'].values())}): "
                f"{_size(volume['free_bytes'])} free of {_size(volume['total_bytes'])}"
            )
        for note in snapshot.figures.get("notes", []):
            self.stdout.write(f"  note: {note}")
