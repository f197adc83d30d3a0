"""Appending to the hash chain. Called by the connection just before COMMIT (audit/pending.py)."""

import json
from typing import Any

from django.utils import timezone

from audit.canonical import GENESIS_HASH, event_hash, format_time
from audit.models import AuditEvent, ChainHead
from config.db.features import project_features


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
        events.append(content)
    if project_features(connection).has_writable_ctes:
        _insert_and_move_head(connection, events, sequence, prev_hash, now)
        return
    AuditEvent.objects.using(connection.alias).bulk_create([AuditEvent(**e) for e in events])
    ChainHead.objects.using(connection.alias).filter(pk=1).update(
        sequence=sequence, hash=prev_hash, occurred_at=now
    )


_FIELDS = AuditEvent._meta.concrete_fields
_JSON = {"changes", "metadata"}


def _append_sql(connection: Any) -> str:
    """The events and the head's new position in one statement (PostgreSQL): one round trip
    fewer in every audited transaction. The head is locked already; its trigger still checks
    that it only moves forward. Each column travels as one typed array."""
    columns = ", ".join(str(f.column) for f in _FIELDS)
    arrays = ", ".join(
        "%s::text[]" if f.name in _JSON else f"%s::{f.db_type(connection)}[]" for f in _FIELDS
    )
    values = ", ".join(
        f"x.{f.column}::jsonb" if f.name in _JSON else f"x.{f.column}" for f in _FIELDS
    )
    return (
        f"WITH ins AS (INSERT INTO audit_auditevent ({columns}) SELECT {values}"  # noqa: S608
        f" FROM unnest({arrays}) AS x({columns}))"
        " UPDATE audit_chainhead SET sequence = %s, hash = %s, occurred_at = %s WHERE id = 1"
    )


def _insert_and_move_head(
    connection: Any, events: list[dict[str, Any]], sequence: int, head_hash: str, now: Any
) -> None:
    """The events' columns straight from their contents (no model instance per event; a
    column a content lacks takes the field's default)."""
    columns: list[list[Any]] = [[] for _ in _FIELDS]
    for event in events:
        for values, f in zip(columns, _FIELDS, strict=True):
            value = event[f.attname] if f.attname in event else f.get_default()
            values.append(json.dumps(value) if f.name in _JSON else value)
    with connection.cursor() as cursor:
        cursor.execute(_append_sql(connection), [*columns, sequence, head_hash, now])
