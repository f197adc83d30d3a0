"""Request context (request id, user, IP) that reaches services without passing it along."""

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RequestContext:
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ip: str | None = None
    user_agent: str = ""
    request: Any = None  # the HttpRequest; its user is read late, after authentication

    @property
    def user(self) -> Any:
        user = getattr(self.request, "user", None)
        return user if getattr(user, "is_authenticated", False) else None


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "ledgerguard_request_context", default=None
)


def current() -> RequestContext | None:
    return _current.get()


@contextmanager
def bind(ctx: RequestContext) -> Iterator[RequestContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
