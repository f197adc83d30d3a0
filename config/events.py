"""Audit events that the plumbing records: tokens created and revoked, refused tokens, what the
admin changes in users and groups.

The plumbing imports no app, so the audit trail registers its recorder here
(AuditConfig.ready) and the plumbing calls these functions. Events belong to the transaction
of the change they record: with no recorder registered they raise, never dropping an event.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db import models


class RecordFunc(Protocol):
    def __call__(
        self,
        *,
        action: str,
        obj: models.Model | None = ...,
        object_type: str = ...,
        object_id: Any = ...,
        object_repr: str = ...,
        changes: Mapping[str, Any] | None = ...,
        metadata: Mapping[str, Any] | None = ...,
        actor: Any = ...,
        using: str = ...,
    ) -> None: ...


class RecordRepeatableFunc(Protocol):
    def __call__(
        self,
        *,
        action: str,
        reason: str,
        who: str = ...,
        metadata: Mapping[str, Any] | None = ...,
        actor: Any = ...,
    ) -> bool: ...


class DiffFunc(Protocol):
    def __call__(
        self, before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> dict[str, list[Any]]: ...


class SnapshotFunc(Protocol):
    def __call__(self, instance: models.Model, fields: Iterable[str]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Recorder:
    """What the audit trail provides. `record` and `record_repeatable` as
    `audit.services.audit_record` and `audit_record_repeatable`; `diff` and `snapshot` compare
    and read values as the trail stores them (normalised for its hash)."""

    record: RecordFunc
    record_repeatable: RecordRepeatableFunc
    diff: DiffFunc
    snapshot: SnapshotFunc


_recorder: Recorder | None = None


def register_recorder(recorder: Recorder | None) -> Recorder | None:
    """Install the audit trail's recorder (None: none, so that events raise); returns the one
    it replaces, for whoever puts it back."""
    global _recorder
    previous, _recorder = _recorder, recorder
    return previous


def recorder() -> Recorder:
    if _recorder is None:
        raise ImproperlyConfigured(
            "no audit recorder is registered (the audit app is not installed or not ready): "
            "the event would be lost"
        )
    return _recorder


def record(
    *,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: Any = "",
    object_repr: str = "",
    changes: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    actor: Any = None,
) -> None:
    """One audit event in the current transaction (or in its own, outside one); the actor
    and the request's details come from the request context when not given."""
    recorder().record(
        action=action,
        obj=obj,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr,
        changes=changes,
        metadata=metadata,
        actor=actor,
    )


def record_repeatable(
    *, action: str, reason: str, metadata: Mapping[str, Any] | None = None
) -> bool:
    """An event anyone can cause at will (a refused token), recorded within the trail's
    bounds; True when recorded in full."""
    return recorder().record_repeatable(action=action, reason=reason, metadata=metadata)


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields whose values, as the trail stores them, differ."""
    return recorder().diff(before, after)


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """Field values of `instance` as the trail stores them (foreign keys as ids)."""
    return recorder().snapshot(instance, fields)
