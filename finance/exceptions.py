"""Ledger errors with stable codes (see docs/ledger.md for the full list)."""

from dataclasses import dataclass
from typing import Any

from config.errors import Conflict, DomainError


@dataclass(frozen=True)
class Violation:
    """One broken posting rule: its code (finance/rules.py RULES), message and field."""

    code: str
    message: str
    field: str | None = None


class LedgerError(DomainError):
    code = "ledger.error"


class RuleViolation(LedgerError):
    """One or more posting rules are broken. `violations` lists every one of them."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        first = violations[0]
        fields: dict[str, Any] = {}
        for v in violations:
            fields.setdefault(v.field or "non_field_errors", []).append(
                {"code": v.code, "message": v.message}
            )
        super().__init__(first.message, code=first.code, fields=fields)


class InvalidState(LedgerError):
    code = "entry.invalid_state"


class AccountLocked(LedgerError):
    code = "account.has_postings"


class PeriodError(LedgerError):
    code = "period.invalid"


class ApprovalError(LedgerError):
    code = "entry.approval_required"


__all__ = [
    "AccountLocked",
    "ApprovalError",
    "Conflict",
    "InvalidState",
    "LedgerError",
    "PeriodError",
    "RuleViolation",
    "Violation",
]
