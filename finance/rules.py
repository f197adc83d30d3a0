"""The posting rules: one module used by the services, the API serializers and the admin forms.

Each rule has a stable code (listed in docs/ledger.md). Functions here only read; they return
every violation they find so that a user sees all problems at once, and `check_*` raises
`RuleViolation` carrying all of them.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from finance import money
from finance.exceptions import RuleViolation, Violation
from finance.models import (
    Account,
    EntrySource,
    EntryStatus,
    FiscalPeriod,
    JournalEntry,
    Side,
)

# code -> default message; the documentation table is generated from this.
RULES: dict[str, str] = {
    "entry.too_few_lines": "A journal entry needs at least two lines.",
    "entry.unbalanced": "Debits and credits differ in {currency}: {debits} debit, "
    "{credits} credit.",
    "entry.date_in_future": "The entry date is more than {days} days in the future.",
    "line.account_missing": "Line {n}: the account does not exist.",
    "line.account_inactive": "Line {n}: account {account} is inactive.",
    "line.amount_not_positive": "Line {n}: the amount must be greater than zero.",
    "line.amount_not_quantized": "Line {n}: {amount} has more decimals than {currency} allows "
    "({places}).",
    "line.amount_too_large": "Line {n}: {amount} is over the largest amount the ledger keeps "
    "exactly, {limit} {currency} (15 significant digits at the currency's minor unit).",
    "line.currency_mismatch": "Line {n}: the line is in {currency} but account {account} is in "
    "{account_currency}.",
    "line.side_invalid": "Line {n}: side must be D (debit) or C (credit).",
    "period.missing": "No fiscal period covers {date}.",
    "period.closed": "Fiscal period {period} is closed.",
    "account.negative_balance": "Posting would take account {account} to {balance} {currency}; "
    "it does not allow a negative balance.",
    "account.total_too_large": "Posting would take the {side} total of account {account} to "
    "{total} {currency}, over the largest amount the ledger keeps exactly ({limit} {currency}).",
    "entry.self_approval": "The approver must be a different person from the entry's creator "
    "and submitter.",
    "entry.approval_required": "This entry needs a second person's approval; submit it instead.",
    "entry.invalid_state": "The entry is {status}; this needs it to be {expected}.",
    "account.has_postings": "Account {account} has postings: it cannot be deleted and its "
    "{what} cannot change.",
    "account.currency_unknown": "Unknown currency {currency}.",
    "account.parent_invalid": "The parent account must have the same type and currency and "
    "must not be the account itself or one of its children.",
    "period.overlap": "The period overlaps {other}.",
    "period.has_pending_entries": "Period {period} still has entries waiting for approval.",
    "period.checks_failing": "Period {period} cannot close while financial checks fail: "
    "{checks} (check run #{run}). Fix the findings, or have someone else explain the expected "
    "ones, then close again.",
    "period.not_closed": "Period {period} is not closed.",
    "account.has_children": "Account {account} has sub-accounts; move or delete them first.",
    "entry.not_owner": "Only the entry's creator may change or delete a draft.",
    "entry.already_reversed": "The entry was already reversed by {reversal}.",
}


def violation(code: str, field: str | None = None, **params: object) -> Violation:
    return Violation(code=code, message=RULES[code].format(**params), field=field)


@dataclass
class LineInput:
    """One line as typed by a user, before it is a row."""

    account: Account | None
    side: str
    amount: Decimal
    currency: str | None = None  # defaults to the account's currency
    description: str = ""

    @property
    def effective_currency(self) -> str | None:
        return self.currency or (self.account.currency if self.account else None)


def raise_if(violations: Sequence[Violation]) -> None:
    if violations:
        raise RuleViolation(list(violations))


# Entries --------------------------------------------------------------------


def period_for(entry_date: date) -> FiscalPeriod | None:
    return FiscalPeriod.objects.filter(start_date__lte=entry_date, end_date__gte=entry_date).first()


def validate_lines(lines: Sequence[LineInput]) -> list[Violation]:
    """Rules that need only the lines: count, amounts, currencies, accounts, balance."""
    found: list[Violation] = []
    if len(lines) < 2:
        found.append(violation("entry.too_few_lines", field="lines"))
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: {"D": money.ZERO, "C": money.ZERO})
    for n, line in enumerate(lines, start=1):
        problems, counts = _judge_line(n, line)
        found += problems
        if counts:
            assert line.account is not None  # judged
            totals[line.account.currency][line.side] += line.amount
    for currency, sides in sorted(totals.items()):
        if sides["D"] != sides["C"]:
            found.append(
                violation(
                    "entry.unbalanced",
                    field="lines",
                    currency=currency,
                    debits=sides["D"],
                    credits=sides["C"],
                )
            )
    return found


def _judge_line(n: int, line: LineInput) -> tuple[list[Violation], bool]:
    """Line `n`'s violations, and whether its amount counts towards the entry's balance."""
    where = f"lines.{n - 1}"
    if line.account is None:
        return [violation("line.account_missing", field=f"{where}.account", n=n)], False
    if line.side not in Side.values:
        return [violation("line.side_invalid", field=f"{where}.side", n=n)], False
    found: list[Violation] = []
    account, currency = line.account, line.effective_currency
    if not account.is_active:
        found.append(
            violation("line.account_inactive", field=f"{where}.account", n=n, account=account.code)
        )
    if currency != account.currency:
        found.append(
            violation(
                "line.currency_mismatch",
                field=f"{where}.currency",
                n=n,
                currency=currency,
                account=account.code,
                account_currency=account.currency,
            )
        )
        return found, False
    amount = _amount_violation(n, line.amount, account.currency)
    if amount is not None:
        return [*found, amount], False
    return found, True


def _amount_violation(n: int, amount: Decimal, currency: str) -> Violation | None:
    field = f"lines.{n - 1}.amount"
    if amount <= 0:
        return violation("line.amount_not_positive", field=field, n=n)
    if not money.is_quantized(amount, currency):
        return violation(
            "line.amount_not_quantized",
            field=field,
            n=n,
            amount=amount,
            currency=currency,
            places=money.minor_unit(currency),
        )
    if not money.within_limit(amount, currency):
        return violation(
            "line.amount_too_large",
            field=field,
            n=n,
            amount=amount,
            currency=currency,
            limit=f"{money.max_amount(currency):,}",
        )
    return None


def validate_date(entry_date: date, period: FiscalPeriod | None) -> list[Violation]:
    found: list[Violation] = []
    limit = timezone.localdate() + timedelta(days=settings.LEDGER_MAX_FUTURE_DAYS)
    if entry_date > limit:
        found.append(
            violation(
                "entry.date_in_future", field="entry_date", days=settings.LEDGER_MAX_FUTURE_DAYS
            )
        )
    if period is None:
        found.append(violation("period.missing", field="entry_date", date=entry_date.isoformat()))
    elif not period.is_open:
        found.append(violation("period.closed", field="entry_date", period=period.name))
    return found


def check_entry(*, entry_date: date, lines: Sequence[LineInput]) -> FiscalPeriod:
    """Every rule that can be judged before posting. Returns the entry's period."""
    period = period_for(entry_date)
    raise_if(validate_date(entry_date, period) + validate_lines(lines))
    assert period is not None
    return period


def validate_projected_balances(
    projected: Iterable[tuple[Account, Decimal]],
) -> list[Violation]:
    """`projected` pairs each touched account with its balance after the posting."""
    return [
        violation(
            "account.negative_balance",
            field="lines",
            account=account.code,
            balance=balance,
            currency=account.currency,
        )
        for account, balance in projected
        if balance < 0 and not account.allow_negative
    ]


def validate_projected_totals(
    projected: Iterable[tuple[Account, Decimal, Decimal]],
) -> list[Violation]:
    """`projected` is each touched account with its debit and credit totals after the posting.
    The totals only grow, so an account this busy stops taking postings at the limit instead
    of being stored inexactly (SQLite) or overflowing its column (PostgreSQL)."""
    found: list[Violation] = []
    for account, debit_total, credit_total in projected:
        for side, total in (("debit", debit_total), ("credit", credit_total)):
            if not money.within_limit(total, account.currency):
                found.append(
                    violation(
                        "account.total_too_large",
                        field="lines",
                        side=side,
                        account=account.code,
                        total=total,
                        currency=account.currency,
                        limit=f"{money.max_amount(account.currency):,}",
                    )
                )
    return found


# Workflow -------------------------------------------------------------------


def check_status(entry: JournalEntry, *expected: str) -> None:
    if entry.status not in expected:
        raise_if(
            [
                violation(
                    "entry.invalid_state",
                    status=entry.get_status_display().lower(),
                    expected=" or ".join(EntryStatus(s).label.lower() for s in expected),
                )
            ]
        )


def approval_threshold(currency: str) -> Decimal | None:
    thresholds = settings.LEDGER_APPROVAL_THRESHOLDS
    return thresholds.get(currency, thresholds.get("*"))


def needs_approval(*, source: str, lines: Sequence[LineInput]) -> bool:
    """Manual entries at or above the currency's threshold need maker-checker approval."""
    if source != EntrySource.MANUAL:
        return False
    debits: dict[str, Decimal] = defaultdict(lambda: money.ZERO)
    for line in lines:
        if line.side == Side.DEBIT and line.effective_currency:
            debits[line.effective_currency] += line.amount
    for currency, total in debits.items():
        threshold = approval_threshold(currency)
        if threshold is not None and total >= threshold:
            return True
    return False


def check_owner(entry: JournalEntry, actor) -> None:
    """Drafts belong to their creator: nobody else edits what they may later approve."""
    if actor.pk != entry.created_by_id:
        raise_if([violation("entry.not_owner")])


def check_approver(entry: JournalEntry, approver) -> None:
    if approver.pk in (entry.created_by_id, entry.submitted_by_id):
        raise_if([violation("entry.self_approval")])


def check_direct_post(*, source: str, lines: Sequence[LineInput]) -> None:
    if needs_approval(source=source, lines=lines):
        raise_if([violation("entry.approval_required")])


# Accounts and periods -------------------------------------------------------


def validate_account(
    *, account: Account | None, type: str, currency: str, parent: Account | None
) -> list[Violation]:
    found: list[Violation] = []
    if not money.is_known_currency(currency):
        found.append(violation("account.currency_unknown", field="currency", currency=currency))
    if parent is not None:
        bad = parent.type != type or parent.currency != currency
        node: Account | None = parent
        while node is not None and not bad:
            bad = account is not None and node.pk == account.pk
            node = node.parent
        if bad:
            found.append(violation("account.parent_invalid", field="parent"))
    return found


def validate_period(
    *, start_date: date, end_date: date, exclude_pk: int | None = None
) -> list[Violation]:
    overlapping = FiscalPeriod.objects.filter(start_date__lte=end_date, end_date__gte=start_date)
    if exclude_pk:
        overlapping = overlapping.exclude(pk=exclude_pk)
    other = overlapping.first()
    return [violation("period.overlap", field="start_date", other=other.name)] if other else []
