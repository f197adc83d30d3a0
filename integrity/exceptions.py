"""Errors of the integrity services and the transaction manager, with their stable codes
(docs/api.md and docs/error-recovery.md list them). `integrity.transactions` re-exports the
transaction manager's, beside `run_operation`, for the apps that run operations."""

from config.errors import Conflict, DomainError


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


class OperationFailed(DomainError):
    """The operation could not finish; it was rolled back and kept as a dead letter."""

    code = "operation.failed"
    http_status = 500
    passes = True  # a failure of the transaction manager may pass: its dead letter is retried


class OperationUnavailable(OperationFailed):
    """Transient faults outlasted the retries; the operation is kept for a later retry."""

    code = "operation.unavailable"
    http_status = 503


class OperationKeyReused(DomainError):
    code = "operation.key_reused"
    http_status = 409


class UnknownOperation(LookupError):
    """No operation is registered under this name (in this process)."""


class FindingNotExplainable(FindingError):
    """The check's findings are never "expected" (a dead scheduler): fix the cause."""

    code = "finding.not_explainable"


class IdempotencyKeyInvalid(DomainError):
    code = "idempotency.key_invalid"
    http_status = 400


class IdempotencyKeyReused(Conflict):
    """The key was already used with a different request."""

    code = "idempotency.key_reused"


class IdempotencyInProgress(Conflict):
    """A request with the key is still running; the client retries later."""

    code = "idempotency.in_progress"
