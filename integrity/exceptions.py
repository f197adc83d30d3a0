"""Errors of the integrity services, with their stable codes (docs/api.md lists them).

The transaction manager's own errors (operation.failed, operation.unavailable,
operation.key_reused) stay in integrity/transactions.py beside the code that raises them.
"""

from config.exceptions import DomainError


class DeadLetterError(DomainError):
    """The dead letter is not in a state that allows the action (a retry, a discard)."""

    code = "deadletter.invalid_state"


class DeadLetterReasonRequired(DomainError):
    """A dead letter is discarded only with a reason."""

    code = "deadletter.reason_required"


class CheckRunError(DomainError):
    """A run asked for unknown tags or checks, or is no longer queued."""

    code = "checks.invalid"
    http_status = 400


class FindingError(DomainError):
    """A finding cannot be explained (or withdrawn) as asked."""

    code = "finding.invalid"
    http_status = 400
