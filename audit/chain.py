"""Appending to the hash chain. Called by the connection just before COMMIT (audit/pending.py)."""

from typing import Any

from django.utils import timezone

from audit.canonical import GENESIS_HASH, event_hash, format_time
from audit.models import AuditEvent, ChainHead


def _locked_head(connection) -> Any:
    heads = ChainHead.objects.using(connection.alias)
    # SQLite has no row locks; its IMMEDIATE transactions already hold the write lock.
    head = heads.select_for_update().filter(pk=1).first()
    if head is None:  # only after a test flush wiped the row the migration made
        heads.bulk_create([ChainHead(pk=1)], ignore_conflicts=True)
        head = heads.select_for_update().get(pk=1)
    return head


def append(connection, contents: list[dict[str, Any]]) -> None:
    """Number, time and hash `contents` onto the chain, in this (uncommitted) transaction.

    Requires: a transaction is open. The head row stays locked until it ends, which makes ids
    follow commit order with no gaps and `occurred_at` never decrease along the chain.
    """
    head = _locked_head(connection)
    now = timezone.now()
    if head.occurred_at and head.occurred_at > now:  # the clock stepped back
        now = head.occurred_at
    sequence, prev_hash = head.sequence, head.hash or GENESIS_HASH
    events = []
    for content in contents:
        sequence += 1
        content = {**content, "id": sequence, "occurred_at": now, "prev_hash": prev_hash}
        hashed = {**content, "occurred_at": format_time(now)}
        content["hash"] = prev_hash = event_hash(hashed)
        events.append(AuditEvent(**content))
    AuditEvent.objects.using(connection.alias).bulk_create(events)
    ChainHead.objects.using(connection.alias).filter(pk=1).update(
        sequence=sequence, hash=prev_hash, occurred_at=now
    )
