"""Money helpers: Decimal only, the minor unit per currency, one quantize()."""

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

# Digits and places of every money column, defined once.
MONEY_MAX_DIGITS = 20
MONEY_DECIMAL_PLACES = 4

# ISO 4217 minor units of the currencies the ledger accepts.
CURRENCY_MINOR_UNITS: dict[str, int] = {
    "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2, "CZK": 2,
    "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "INR": 2, "ISK": 0, "JOD": 3,
    "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PLN": 2,
    "SEK": 2, "SGD": 2, "TND": 3, "TRY": 2, "USD": 2, "ZAR": 2,
}  # fmt: skip

CURRENCY_CHOICES = [(code, code) for code in sorted(CURRENCY_MINOR_UNITS)]

ZERO = Decimal("0")


def is_known_currency(currency: str) -> bool:
    return currency in CURRENCY_MINOR_UNITS


def minor_unit(currency: str) -> int:
    return CURRENCY_MINOR_UNITS[currency]


def exponent(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_unit(currency))


def quantize(amount: Decimal, currency: str, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """The one place where money is rounded."""
    return amount.quantize(exponent(currency), rounding=rounding)


def is_quantized(amount: Decimal, currency: str) -> bool:
    """True when the amount has no digits below the currency's minor unit."""
    try:
        return amount == amount.quantize(exponent(currency))
    except InvalidOperation:
        return False


def to_decimal(value: object) -> Decimal:
    """Parse money from a string, int or Decimal. Floats are refused: they are not money."""
    if isinstance(value, bool | float):
        raise TypeError("money must be given as a string, int or Decimal, never a float")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal amount: {value!r}") from exc
    else:
        raise TypeError(f"cannot read money from {type(value).__name__}")
    if not result.is_finite():
        raise ValueError("amount must be a finite number")
    return result


def format_amount(amount: Decimal, currency: str) -> str:
    """For people: grouped digits in the currency's minor unit, e.g. "12,345.60 USD"."""
    return f"{quantize(Decimal(amount), currency):,} {currency}"
