"""The plumbing's error classes, and the base domain error: a broken business rule or a
refused operation, with a stable code.

Each app subclasses `DomainError` in its `exceptions.py`; the API error handler
(config/exceptions.py) turns it into {"error": {"code", "message", "fields"}}. The plumbing's
own errors (outbound requests, grants, check selection, before-commit hooks) are here too, and
the modules that raise them import them from here.
"""

from typing import Any

from django.db import DatabaseError, IntegrityError


class DomainError(Exception):
    """A broken business rule or a refused operation, with a stable code."""

    code = "domain.error"
    http_status = 422
    # True for a refusal that passes by itself (something busy): a dead letter's retry may
    # try again later; any other domain error is for good.
    passes = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict[str, Any] | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields = fields or {}
        if http_status is not None:
            self.http_status = http_status

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


class URLRefused(DomainError):
    """The URL breaks an outbound rule; `code` names the rule (`outbound.<rule>`)."""

    code = "outbound.refused"
    http_status = 400


class HostUnresolvable(URLRefused):
    """The host does not resolve now: retried when sending (a target is saved all the same)."""

    code = "outbound.host_unresolvable"


class OutboundError(Exception):
    """A request that did not succeed. `permanent`: trying again will not help."""

    def __init__(self, message: str, *, permanent: bool = False, code: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class GrantError(Exception):
    """The grants cannot be written as asked; the message says what to do."""


class UnknownSelection(LookupError):
    """A tag or check name that no registered check has; `field` is "tags" or "checks"."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class BeforeCommitError(DatabaseError):
    """A hook failed with an error that is not a database error. Raised as one, since atomic()
    rolls the transaction back only on those."""


def guard_refusal(exc: BaseException) -> DomainError | None:
    """A database guard's refusal ("ledger.<code>: ...") as the domain error it stands for."""
    text = str(exc)
    if not isinstance(exc, IntegrityError) or "ledger." not in text:
        return None
    code = "ledger." + text.split("ledger.", 1)[1].split(":", 1)[0].strip()
    return DomainError("The database refused a change to the ledger.", code=code[:100])


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


class TokenLifetimeOutOfRange(DomainError):
    code = "token.ttl_out_of_range"


class AuthenticationFailed(DomainError):
    """Unknown user, wrong password or an inactive user (never says which)."""

    code = "auth.failed"
    http_status = 401


class SecondFactorFailed(AuthenticationFailed):
    """The password was right, the second-factor code missing (`auth.otp_required`) or wrong,
    used or throttled (`auth.otp_invalid`): never says which of the last three."""

    code = "auth.otp_invalid"
