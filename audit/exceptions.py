"""The audit trail's error classes."""

from django.db import DatabaseError

from config.errors import DomainError


class InvalidRange(DomainError):
    """A verification asked for a range of events the chain does not hold."""

    code = "audit.invalid_range"
    http_status = 400


class SigningKeyMissing(Exception):
    """AUDIT_SIGNING_KEY is not set, so no checkpoint can be signed (an operator's fix, not
    a caller's mistake: not a domain error)."""


class ExportError(ValueError):
    """An export was asked for in a format the trail does not write."""


class PublishError(Exception):
    """A checkpoint copy did not reach the witness; `permanent` ones are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class AuditChainError(DatabaseError):
    """The pending events could not join the chain; the transaction is rolled back (a
    DatabaseError, because atomic() rolls back only on those)."""
