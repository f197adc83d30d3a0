"""What the ledger admin pages share: a refused change as a form error or a message."""

from django.contrib import messages
from django.core.exceptions import ValidationError

from config.errors import DomainError
from finance.exceptions import RuleViolation


def as_validation_error(exc: RuleViolation) -> ValidationError:
    return ValidationError(
        [ValidationError(f"[{v.code}] {v.message}", code=v.code) for v in exc.violations]
    )


def report(modeladmin, request, obj, exc: DomainError) -> None:
    modeladmin.message_user(request, f"{obj}: [{exc.code}] {exc.message}", level=messages.ERROR)
