"""Which worker runs a backup or drill row. django-q can hand a job out again while its first
run is still going (the broker's `retry` clock starts when the job leaves the queue, its
`timeout` only when a worker begins it), and a job is presented again after its worker died.
A worker takes the row first: one conditional UPDATE sets `lease_until`, so of two workers one
wins; the lease outlasts any run django-q lets live (`Q_TIMEOUT`), so a lease still held means
a live worker, and a lapsed one a worker that died."""

from datetime import timedelta
from typing import Literal

from django.conf import settings
from django.utils import timezone

from backups.models import Backup, BackupStatus, RestoreDrill

# Beyond Q_TIMEOUT: django-q kills a task at its timeout, counted from the worker's start, which
# is before the take; the margin covers clocks of different hosts that disagree a little.
LEASE_MARGIN_SECONDS = 10

Taken = Literal["taken", "taken-after-dead-worker", "held", "ended"]


def lease_seconds() -> int:
    return int(settings.Q_CLUSTER["timeout"]) + LEASE_MARGIN_SECONDS


def row_take(row: Backup | RestoreDrill) -> Taken:
    """Take a RUNNING row for this worker: "taken" when no worker had it, "taken-after-dead-
    worker" when one had and its lease lapsed (it died: what it left must be dealt with),
    "held" while another worker's lease runs, "ended" when the row is no longer RUNNING."""
    now = timezone.now()
    running = type(row).objects.filter(pk=row.pk, status=BackupStatus.RUNNING)
    until = now + timedelta(seconds=lease_seconds())
    if running.filter(lease_until__isnull=True).update(lease_until=until):
        taken: Taken = "taken"
    elif running.filter(lease_until__lt=now).update(lease_until=until):
        taken = "taken-after-dead-worker"
    elif running.exists():
        return "held"
    else:
        return "ended"
    row.lease_until = until
    return taken


def held_until(row: Backup | RestoreDrill) -> str:
    held = type(row).objects.filter(pk=row.pk).values_list("lease_until", flat=True).first()
    return f"{timezone.localtime(held):%H:%M:%S}" if held else "now"
