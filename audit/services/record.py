"""Recording an audit event: what every other service calls, inside its own transaction.

The event joins the hash chain when that transaction commits (audit/pending.py) and vanishes
if it rolls back.
"""

import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models, transaction

from audit.canonical import SCHEMA_VERSION, normalize
from audit.pending import HOOK
from config import context

# Values of these fields never enter the trail; that they changed does. Matched as words of
# the field name (`token_digest`, `signing_key`), so `key_pattern` or an alert's `key` stay.
# Not config.sanitize's substring list: that one would hide `discarded_at` ("card").
SENSITIVE = re.compile(
    r"(^|_)(password|passwd|secret|token|digest|signature|api_key|private_key|signing_key)($|_)"
)
REDACTED = "[redacted]"


def actor_repr(user: Any) -> str:
    if user is None:
        return "system"
    return f"{user.get_username()} (#{user.pk})"[:200]


def _redact(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        field: [REDACTED, REDACTED] if SENSITIVE.search(field.lower()) else values
        for field, values in changes.items()
    }


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """Field values of `instance` as the trail stores them (foreign keys as ids)."""
    values = {}
    for name in fields:
        field = instance._meta.get_field(name)
        values[name] = field.value_from_object(instance) if field.concrete else None
    normalized: dict[str, Any] = normalize(values)
    return normalized


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields whose normalised values differ."""
    before, after = normalize(before), normalize(after)
    return {
        name: [before.get(name), after.get(name)]
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }


def audit_record(
    *,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: Any = "",
    object_repr: str = "",
    changes: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    actor: Any = None,
    using: str = "default",
) -> None:
    """Record one audit event in the current transaction (or in its own, outside one).

    The actor, IP, user agent and request id come from the request context when not given.
    """
    ctx = context.current()
    if actor is None and ctx is not None:
        actor = ctx.user
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
        object_repr = object_repr or str(obj)
    content = {
        "schema_version": SCHEMA_VERSION,
        "actor_id": actor.pk if actor is not None else None,
        "actor_repr": actor_repr(actor),
        "ip": (ctx.ip or None) and ctx.ip[:45] if ctx else None,
        "user_agent": normalize(ctx.user_agent[:500]) if ctx else "",
        "request_id": ctx.request_id[:64] if ctx else "",
        "action": action[:100],
        "object_type": object_type[:100],
        "object_id": normalize(str(object_id if object_id is not None else ""))[:64],
        "object_repr": normalize(str(object_repr))[:200],
        "changes": _redact(normalize(dict(changes or {}))),
        "metadata": normalize(dict(metadata or {})),
    }
    # Held until the transaction commits (one of its own outside one), then appended to the
    # chain by audit.pending's before-commit hook.
    transaction.get_connection(using).hold(HOOK, content)
