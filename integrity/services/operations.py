"""Retention of the transaction manager's operation records (the results that keep a retried
operation exactly-once)."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from integrity.models import DeadLetter, OperationRecord


def operation_records_purge() -> int:
    """Old results go, except those an open dead letter may still need to stay exactly-once."""
    cutoff = timezone.now() - timedelta(days=settings.OPERATION_RECORD_RETENTION_DAYS)
    needed = DeadLetter.objects.exclude(
        status__in=(DeadLetter.Status.RESOLVED, DeadLetter.Status.DISCARDED)
    ).values("idempotency_key")
    deleted, _ = (
        OperationRecord.objects.filter(completed_at__lt=cutoff).exclude(key__in=needed).delete()
    )
    return deleted
