"""Shapes only: rules live in finance/rules.py and are called from validate()."""

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config import serializers as strict
from config.schema import ERROR_OBJECT_SCHEMA
from finance import money, rules, services
from finance.models import (
    Account,
    AccountType,
    FiscalPeriod,
    JournalEntry,
    JournalLine,
    Side,
)

MAX_LINES = 500


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
        "maxLength": 40,
        "example": "1234.50",
        "description": "Plain ASCII decimal notation. At most 15 significant digits at the "
        "currency's minor unit (USD up to 9999999999999.99, JPY up to 999999999999999).",
    }
)
class MoneyField(serializers.Field):
    """Amounts travel as strings ("1234.50"); integers are accepted, floats are not.

    Only plain ASCII decimal notation is money: no exponent, underscore, space or non-ASCII
    digit. On output the amount is shown in its currency's minor unit, read from
    `currency_source` on the same object (or the account's currency).
    """

    default_error_messages = {
        "invalid": 'Send the amount as a decimal string of ASCII digits, for example "1234.50".',
        "too_large": "The amount is over the largest the ledger keeps exactly: 15 significant "
        "digits at the currency's minor unit (USD up to 9,999,999,999,999.99).",
    }

    def __init__(self, *, currency_source: str = "currency", **kwargs) -> None:
        self.currency_source = currency_source
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        value = super().get_attribute(instance)
        currency = instance
        for part in self.currency_source.split("."):
            currency = getattr(currency, part, None)
        return value, currency

    def to_internal_value(self, data: object) -> Decimal:
        if isinstance(data, str) and len(data) > 40:
            self.fail("too_large")
        try:
            value = money.to_decimal(data)
        except (TypeError, ValueError):
            self.fail("invalid")
        integer_digits = value.adjusted() + 1 if value else 0
        if integer_digits > money.EXACT_DIGITS:
            self.fail("too_large")
        return value

    def to_representation(self, value) -> str:
        amount, currency = value if isinstance(value, tuple) else (value, None)
        if currency and money.is_known_currency(currency):
            return str(money.quantize(Decimal(amount), currency))
        return str(amount)


class AccountSerializer(strict.ModelSerializer):
    balance = MoneyField(source="balance.balance", read_only=True)

    class Meta:
        model = Account
        fields = [
            "id",
            "code",
            "name",
            "type",
            "currency",
            "parent",
            "is_active",
            "allow_negative",
            "is_control",
            "description",
            "balance",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs):
        account = self.instance
        rules.raise_if(
            rules.validate_account(
                account=account,
                type=attrs.get("type", account.type if account else AccountType.ASSET),
                currency=attrs.get("currency", account.currency if account else ""),
                parent=attrs.get("parent", account.parent if account else None),
            )
        )
        return attrs


class AccountUpdateSerializer(AccountSerializer):
    class Meta(AccountSerializer.Meta):
        read_only_fields = ["code", "created_at", "updated_at"]


class FiscalPeriodSerializer(strict.ModelSerializer):
    class Meta:
        model = FiscalPeriod
        fields = [
            "id",
            "name",
            "fiscal_year",
            "start_date",
            "end_date",
            "status",
            "closed_at",
            "closed_by",
            "reopened_at",
            "reopened_by",
        ]
        read_only_fields = [
            "status",
            "closed_at",
            "closed_by",
            "reopened_at",
            "reopened_by",
        ]
        extra_kwargs = {"fiscal_year": {"required": False}}

    def validate(self, attrs):
        if attrs["end_date"] < attrs["start_date"]:
            raise serializers.ValidationError({"end_date": ["Must not be before start_date."]})
        rules.raise_if(
            rules.validate_period(start_date=attrs["start_date"], end_date=attrs["end_date"])
        )
        return attrs


class SideField(serializers.ChoiceField):
    """D or C; "debit" and "credit" (any case) are accepted too."""

    ALIASES = {"debit": Side.DEBIT, "credit": Side.CREDIT, "d": Side.DEBIT, "c": Side.CREDIT}
    default_error_messages = {
        "invalid_choice": 'Side must be "D" (debit) or "C" (credit), not "{input}".'
    }

    def __init__(self, **kwargs):
        super().__init__(choices=Side.choices, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = self.ALIASES.get(data.strip().lower(), data)
        return super().to_internal_value(data)


class LineInputSerializer(serializers.Serializer):
    account = strict.PrimaryKeyRelatedField(queryset=Account.objects.all())
    side = SideField()
    amount = MoneyField()
    currency = serializers.ChoiceField(choices=money.CURRENCY_CHOICES, required=False)
    description = strict.CharField(max_length=500, required=False, allow_blank=True)

    def validate(self, attrs):
        # The limit depends on the currency: named here as bad input (400); the rule layer
        # refuses it too (line.amount_too_large) for callers that skip the API.
        account, amount = attrs.get("account"), attrs.get("amount")  # a PATCH may leave them out
        currency = attrs.get("currency") or (account.currency if account else "")
        if amount is None or not money.is_known_currency(currency):
            return attrs
        if not money.within_limit(amount, currency):
            limit = money.max_amount(currency)
            raise serializers.ValidationError(
                {
                    "amount": [
                        f"The largest amount the ledger keeps exactly in {currency} is "
                        f"{limit:,} (15 significant digits at its minor unit)."
                    ]
                }
            )
        return attrs


class EntryInputSerializer(serializers.Serializer):
    entry_date = serializers.DateField()
    description = strict.CharField(max_length=500)
    reference = strict.CharField(max_length=100, required=False, allow_blank=True)
    # drf-stubs do not know ListSerializer's max_length (DRF 3.14+).
    lines = LineInputSerializer(many=True, max_length=MAX_LINES)  # type: ignore[call-arg]

    def validate(self, attrs):
        # The same rule module the services use: a broken rule is a 422 with its code.
        rules.check_entry(
            entry_date=attrs["entry_date"], lines=services.line_inputs(attrs["lines"])
        )
        return attrs


class BatchLineSerializer(serializers.Serializer):
    """A batch line names its account by id without a lookup per line: a missing or inactive
    account refuses its entry (line.account_missing, line.account_inactive), not the batch."""

    account = strict.JsonIntegerField(min_value=1, max_value=2**63 - 1)
    side = SideField()
    amount = MoneyField()
    currency = serializers.ChoiceField(choices=money.CURRENCY_CHOICES, required=False)
    description = strict.CharField(max_length=500, required=False, allow_blank=True)


class BatchEntrySerializer(serializers.Serializer):
    entry_date = serializers.DateField()
    description = strict.CharField(max_length=500)
    reference = strict.CharField(max_length=100, required=False, allow_blank=True)
    lines = BatchLineSerializer(many=True, max_length=MAX_LINES)  # type: ignore[call-arg]


class BatchInputSerializer(serializers.Serializer):
    entries = BatchEntrySerializer(  # type: ignore[call-arg]
        many=True, min_length=1, max_length=services.BATCH_MAX_ENTRIES
    )

    def validate_entries(self, entries):
        lines = sum(len(e["lines"]) for e in entries)
        if lines > services.BATCH_MAX_LINES:
            raise serializers.ValidationError(
                f"A batch takes at most {services.BATCH_MAX_LINES:,} lines; this one has "
                f"{lines:,}. Split it."
            )
        return entries


@extend_schema_field(ERROR_OBJECT_SCHEMA)
class BatchErrorField(serializers.JSONField):
    """The error a single posting of the entry would have answered with, in the one shape."""


class BatchResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The entry's position in the request, from 0.")
    status = serializers.ChoiceField(choices=["posted", "refused"])
    id = serializers.IntegerField(required=False, help_text="The posted entry's id.")
    number = serializers.CharField(required=False, help_text="The posted entry's number.")
    error = BatchErrorField(
        required=False, help_text="Why the entry was refused: the rule's code and message."
    )


class BatchOutputSerializer(serializers.Serializer):
    posted = serializers.IntegerField()
    refused = serializers.IntegerField()
    results = BatchResultSerializer(many=True)


class EntryUpdateSerializer(EntryInputSerializer):
    entry_date = serializers.DateField(required=False)
    description = strict.CharField(max_length=500, required=False)
    lines = LineInputSerializer(many=True, max_length=MAX_LINES, required=False)  # type: ignore[call-arg]

    def validate(self, attrs):
        return attrs  # the service re-checks the whole entry as it will be


class ReverseInputSerializer(serializers.Serializer):
    entry_date = serializers.DateField(required=False)
    description = strict.CharField(max_length=500, required=False)


class LineSerializer(strict.ModelSerializer):
    amount = MoneyField()
    account_code = serializers.CharField(source="account.code", read_only=True)

    class Meta:
        model = JournalLine
        fields = ["line_no", "account", "account_code", "side", "amount", "currency", "description"]


class EntrySerializer(strict.ModelSerializer):
    number = serializers.CharField(source="display_number", read_only=True)
    lines = LineSerializer(many=True, read_only=True)
    reversed_by = serializers.SerializerMethodField()

    class Meta:
        model = JournalEntry
        fields = [
            "id",
            "number",
            "status",
            "entry_date",
            "period",
            "description",
            "reference",
            "source",
            "reversal_of",
            "reversed_by",
            "created_by",
            "created_at",
            "submitted_by",
            "submitted_at",
            "approved_by",
            "approved_at",
            "posted_by",
            "posted_at",
            "lines",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_reversed_by(self, entry: JournalEntry) -> int | None:
        reversal = getattr(entry, "reversed_by", None)
        return reversal.pk if reversal else None


class BalanceSerializer(serializers.Serializer):
    account = serializers.IntegerField(source="account_id")
    code = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField()
    currency = serializers.CharField()
    debit_total = MoneyField()
    credit_total = MoneyField()
    balance = MoneyField()


class TotalsSerializer(serializers.Serializer):
    debit = serializers.CharField(help_text="Money, in the currency's minor unit.")
    credit = serializers.CharField(help_text="Money, in the currency's minor unit.")


class TrialBalanceSerializer(serializers.Serializer):
    """The trial balance's shape (the view builds it; this documents it)."""

    as_of = serializers.DateField(allow_null=True)
    balanced = serializers.BooleanField(help_text="Debits equal credits in every currency.")
    totals = serializers.DictField(child=TotalsSerializer(), help_text="Per currency code.")
    rows = BalanceSerializer(many=True)


class StatementLineSerializer(serializers.Serializer):
    entry = serializers.IntegerField(source="entry_id")
    currency = serializers.CharField()
    number = serializers.CharField(source="entry.display_number")
    entry_date = serializers.DateField(source="entry.entry_date")
    description = serializers.CharField(source="entry.description")
    side = serializers.CharField()
    amount = MoneyField()
    running_balance = MoneyField()
