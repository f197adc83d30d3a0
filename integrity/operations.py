"""Operations as objects: a name, the steps that do the work, and the payload keys that name rows.

An app declares each operation once as an `Operation` and registers it when it is ready
(`FinanceConfig.ready`). Callers hand the object itself to `integrity.transactions.run_operation`;
the registry is read only where nothing but the stored name is left: a dead letter retried from
its name and payload, and the check that the ids inside those payloads still point at rows
(`payload_references`, read by integrity.json_references).

A step is a function of the `OperationContext`. Steps run in order, each in its own savepoint;
what one returns is the next one's `ctx.previous` (`ctx.previous_as(Type)` also checks its type),
and the last one's return value is the operation's result. Nothing depends on a function's name,
so renaming a step is an ordinary refactoring.

This module imports nothing of the project: the dead-letter queue (which retries by name) and the
transaction manager (which runs) both stand on it.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from integrity.exceptions import UnknownOperation

T = TypeVar("T")


@dataclass
class OperationContext:
    """What a step gets: the payload, the key, this attempt, and the step before's result."""

    name: str
    payload: dict[str, Any]
    idempotency_key: str
    attempt: int = 1
    previous: Any = None  # the return value of the step before, in this attempt
    compensations: list[Callable[[], None]] = field(default_factory=list)

    def on_rollback(self, compensation: Callable[[], None]) -> None:
        """Undo a side effect outside the database if this attempt fails."""
        self.compensations.append(compensation)

    def previous_as(self, kind: type[T]) -> T:
        """The step before's return value, which must be a `kind` (a typed hand-over)."""
        if not isinstance(self.previous, kind):
            raise TypeError(
                f"{self.name}: the step before returned {type(self.previous).__name__}, "
                f"not {kind.__name__}"
            )
        return self.previous


Step = Callable[[OperationContext], Any]


@dataclass(frozen=True)
class Operation:
    """An all-or-nothing unit of work that a dead letter can run again from name + payload.

    `name` is stored in operation records and dead letters: it never changes once used.
    `references` maps payload keys to the model label ("app_label.ModelName") whose primary
    key they hold, so that integrity can tell a waiting dead letter that can never succeed.
    `claim_last`: claim the idempotency key in the attempt's last statement, together with the
    result, instead of in its first and again at the end: one statement fewer for a hot
    operation. The outcome is the same: one run commits, and a concurrent run with the same
    key returns the first result, whether it reaches the claim (and rolls its work back there)
    or a rule refuses the state the first run left (the runner then finds the key taken). But
    that concurrent run does its work before it finds out, so only steps with no effect
    outside the database (no compensations) may ask for it.
    """

    name: str
    steps: tuple[Step, ...]
    references: Mapping[str, str] = field(default_factory=dict)
    claim_last: bool = False

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError(f"operation {self.name!r} has no steps")
        object.__setattr__(self, "references", MappingProxyType(dict(self.references)))


_REGISTRY: dict[str, Operation] = {}


def operation_register(operation: Operation) -> Operation:
    """Register `operation` under its name; the same name for a different one is a mistake."""
    known = _REGISTRY.get(operation.name)
    if known is not None and known != operation:
        raise ValueError(f"another operation is already registered as {operation.name!r}")
    references = payload_references()
    for key, label in operation.references.items():
        if references.get(key, label) != label:
            raise ValueError(
                f"{operation.name}: payload key {key!r} already refers to {references[key]}"
            )
    _REGISTRY[operation.name] = operation
    return operation


def operation_get(name: str) -> Operation:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownOperation(f"no operation registered as {name!r}") from None


def payload_references() -> dict[str, str]:
    """Payload key -> model label, over every registered operation (in registration order)."""
    found: dict[str, str] = {}
    for operation in _REGISTRY.values():
        for key, label in operation.references.items():
            found.setdefault(key, label)
    return found
