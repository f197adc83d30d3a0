"""Ledger data: accounts, balances, fiscal periods, journal entries and lines.

Invariants that must hold whatever writes the rows are enforced twice: by the services
(finance/rules.py) and by the database (constraints here, triggers in migrations).
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from finance.money import CURRENCY_CHOICES, MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS


def money_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, **kwargs
    )


class AccountType(models.TextChoices):
    ASSET = "asset", "Asset"
    LIABILITY = "liability", "Liability"
    EQUITY = "equity", "Equity"
    INCOME = "income", "Income"
    EXPENSE = "expense", "Expense"


DEBIT_NORMAL = {AccountType.ASSET, AccountType.EXPENSE}


class Account(models.Model):
    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=10, choices=AccountType.choices)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    is_active = models.BooleanField(default=True)
    allow_negative = models.BooleanField(
        default=False, help_text="Allow the balance to go below zero on its normal side."
    )
    is_control = models.BooleanField(
        default=False, help_text="A control account (e.g. receivables) fed by a sub-ledger."
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(type__in=AccountType.values), name="finance_account_type_valid"
            ),
            models.CheckConstraint(condition=~Q(code=""), name="finance_account_code_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def is_debit_normal(self) -> bool:
        return self.type in DEBIT_NORMAL


class AccountBalance(models.Model):
    """Running totals per account, updated inside each posting under a row lock."""

    account = models.OneToOneField(
        Account, primary_key=True, on_delete=models.PROTECT, related_name="balance"
    )
    debit_total = money_field(default=Decimal("0"))
    credit_total = money_field(default=Decimal("0"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(debit_total__gte=0) & Q(credit_total__gte=0),
                name="finance_balance_totals_non_negative",
            )
        ]

    def __str__(self) -> str:
        return f"{self.account.code}: {self.balance}"

    @property
    def balance(self) -> Decimal:
        """Balance on the account's normal side (positive is normal)."""
        if self.account.is_debit_normal:
            return self.debit_total - self.credit_total
        return self.credit_total - self.debit_total


class PeriodStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class FiscalPeriod(models.Model):
    name = models.CharField(max_length=30, unique=True)
    fiscal_year = models.PositiveIntegerField(db_index=True)
    start_date = models.DateField()
    end_date = models.DateField()
    status = models.CharField(
        max_length=10, choices=PeriodStatus.choices, default=PeriodStatus.OPEN
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reopened_at = models.DateTimeField(null=True, blank=True)
    reopened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["start_date"]
        permissions = [
            ("close_fiscalperiod", "Can close a fiscal period"),
            ("reopen_fiscalperiod", "Can reopen a fiscal period"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=models.F("start_date")),
                name="finance_period_dates_ordered",
            ),
            models.CheckConstraint(
                condition=Q(status__in=PeriodStatus.values), name="finance_period_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_open(self) -> bool:
        return self.status == PeriodStatus.OPEN


class EntrySequence(models.Model):
    """Last entry number used per fiscal year; locked at posting so numbers are gapless."""

    fiscal_year = models.PositiveIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.fiscal_year}: {self.last_number}"


class EntryStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    POSTED = "posted", "Posted"
    REVERSED = "reversed", "Reversed"


POSTED_STATES = (EntryStatus.POSTED, EntryStatus.REVERSED)


class EntrySource(models.TextChoices):
    MANUAL = "manual", "Manual"
    SYSTEM = "system", "System"
    REVERSAL = "reversal", "Reversal"


class JournalEntry(models.Model):
    entry_date = models.DateField(db_index=True)
    period = models.ForeignKey(FiscalPeriod, on_delete=models.PROTECT, related_name="entries")
    description = models.CharField(max_length=500)
    reference = models.CharField(max_length=100, blank=True)
    source = models.CharField(
        max_length=10, choices=EntrySource.choices, default=EntrySource.MANUAL
    )
    status = models.CharField(
        max_length=20, choices=EntryStatus.choices, default=EntryStatus.DRAFT, db_index=True
    )
    fiscal_year = models.PositiveIntegerField(null=True, blank=True)
    number = models.PositiveIntegerField(null=True, blank=True)
    reversal_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    posted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    posted_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-entry_date", "-id"]
        verbose_name_plural = "journal entries"
        permissions = [
            ("submit_journalentry", "Can submit a journal entry for approval"),
            ("approve_journalentry", "Can approve and post a journal entry"),
            ("post_journalentry", "Can post a journal entry that needs no approval"),
            ("reverse_journalentry", "Can reverse a posted journal entry"),
            # No role has it: a superuser grants it to an integration's own user (ledger.md).
            (
                "record_journalentry",
                "Can record and post system entries in one step, without approval (batches "
                "from an integration)",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["fiscal_year", "number"],
                condition=Q(number__isnull=False),
                name="finance_entry_number_unique_per_year",
            ),
            models.CheckConstraint(
                condition=Q(status__in=EntryStatus.values), name="finance_entry_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=POSTED_STATES)
                | (
                    Q(number__isnull=False)
                    & Q(fiscal_year__isnull=False)
                    & Q(posted_at__isnull=False)
                ),
                name="finance_posted_entry_has_number",
            ),
        ]
        indexes = [models.Index(fields=["status", "entry_date"])]

    def __str__(self) -> str:
        # Numbered when posted; before that the status names it ("Pending approval #12").
        return self.display_number or f"{self.get_status_display()} #{self.pk}"

    @property
    def display_number(self) -> str:
        if self.number is None:
            return ""
        return f"JE-{self.fiscal_year}-{self.number:06d}"

    @property
    def is_posted(self) -> bool:
        return self.status in POSTED_STATES


class Side(models.TextChoices):
    DEBIT = "D", "Debit"
    CREDIT = "C", "Credit"


class JournalLine(models.Model):
    entry = models.ForeignKey(JournalEntry, on_delete=models.CASCADE, related_name="lines")
    line_no = models.PositiveSmallIntegerField()
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lines")
    side = models.CharField(max_length=1, choices=Side.choices)
    amount = money_field()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    description = models.CharField(max_length=500, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["entry_id", "line_no"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0),
                name="finance_line_amount_positive",
                violation_error_code="line.amount_not_positive",
                violation_error_message="The amount must be greater than zero.",
            ),
            models.CheckConstraint(condition=Q(side__in=Side.values), name="finance_line_side"),
            models.UniqueConstraint(fields=["entry", "line_no"], name="finance_line_no_unique"),
        ]
        indexes = [models.Index(fields=["account", "entry"])]

    def __str__(self) -> str:
        return f"Line {self.line_no}"

    @property
    def signed_amount(self) -> Decimal:
        """Debit positive, credit negative."""
        return self.amount if self.side == Side.DEBIT else -self.amount


class BalanceCheckpoint(models.Model):
    """Totals of an account's posted lines in one fiscal year, verified through entry number
    `through_number` by the real-time re-check, so that the next re-check adds only the lines
    of entries numbered after it. Numbers are given in commit order within a fiscal year (the
    year's sequence row stays locked until the posting commits), so every entry numbered up to
    `through_number` was already counted. Derived data: the full `finance.balance_cache` check
    never relies on it."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    fiscal_year = models.PositiveIntegerField()
    through_number = models.PositiveIntegerField()
    debit_total = money_field()
    credit_total = money_field()
    verified_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "fiscal_year"], name="finance_balancecheckpoint_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.fiscal_year} through {self.through_number}"
