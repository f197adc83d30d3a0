"""Money helpers: Decimal only, the minor unit per currency, one quantize()."""

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

# Digits and places of every money column, defined once.
MONEY_MAX_DIGITS = 20
MONEY_DECIMAL_PLACES = 4

# ISO 4217 minor units of the currencies the ledger accepts.
CURRENCY_MINOR_UNITS: dict[str, int] = {
    "AUD": 2,
    "BHD": 3,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CLP": 0,
    "CNY": 2,
    "CZK": 2,
    "DKK": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "HUF": 2,
    "INR": 2,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "MXN": 2,
    "NOK": 2,
    "NZD": 2,
    "OMR": 3,
    "PLN": 2,
    "SEK": 2,
    "SGD": 2,
    "TND": 3,
    "TRY": 2,
    "USD": 2,
    "ZAR": 2,
}

CURRENCY_CHOICES = [(code, code) for code in sorted(CURRENCY_MINOR_UNITS)]

ZERO = Decimal("0")

# The ledger keeps amounts (and account totals) of at most this many significant digits at the
# currency's minor unit, on every engine: SQLite stores a decimal column as a float and reads
# back 15 significant digits, so more would be stored inexactly there (and PostgreSQL's column
# holds 16 integer digits). USD: 9,999,999,999,999.99; JPY: 999,999,999,999,999.
EXACT_DIGITS = 15

# Money as text: ASCII digits, an optional minus and decimal point; no exponent, underscore,
# space, sign "+" or non-ASCII digit (Python's Decimal() takes all of those).
_AMOUNT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


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


def max_amount(currency: str) -> Decimal:
    """The largest amount (or account total) the ledger keeps in `currency`."""
    return Decimal(10) ** (EXACT_DIGITS - minor_unit(currency)) - exponent(currency)


def within_limit(amount: Decimal, currency: str) -> bool:
    return abs(amount) <= max_amount(currency)


def to_decimal(value: object) -> Decimal:
    """Parse money from a string, int or Decimal. Floats are refused: they are not money.

    A string must be plain ASCII decimal notation ("1234.50", "-3", "0.125")."""
    if isinstance(value, bool | float):
        raise TypeError("money must be given as a string, int or Decimal, never a float")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        if not _AMOUNT.fullmatch(value):
            raise ValueError(f"not a decimal amount: {value[:50]!r}")
        result = Decimal(value)
    else:
        raise TypeError(f"cannot read money from {type(value).__name__}")
    if not result.is_finite():
        raise ValueError("amount must be a finite number")
    return result


def format_amount(amount: Decimal, currency: str) -> str:
    """For people: grouped digits in the currency's minor unit, e.g. "12,345.60 USD"."""
    return f"{quantize(Decimal(amount), currency):,} {currency}"
