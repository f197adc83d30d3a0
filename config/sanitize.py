"""Make a payload safe to store in the error log: no secrets, no card numbers, bounded size.

`sanitize(value)` returns a new JSON-ready structure (dicts, lists, strings, numbers, bools,
None) and never mutates its input.
"""

import datetime
import math
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import models

REDACTED = "[redacted]"
CARD = "[card]"
MAX_STRING = 2000
MAX_ITEMS = 100
MAX_DEPTH = 12

# A key is sensitive when it contains one of these (case-insensitive, as a substring) ...
SENSITIVE_KEY_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "session",
    "csrf",
    "card",
    "cvv",
    "cvc",
    "iban",
    "account_number",
)
# ... or has "pan" (primary account number) as one of its words: pan, card_pan, panNumber,
# userPAN; as a bare substring it would redact every "company" and "expand".
_KEY_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

# 13 to 19 digits, a single space or dash allowed between any two of them.
_CARD_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _is_sensitive_key(key: str) -> bool:
    lowered = key.lower().replace("-", "_")  # X-Api-Key, account-number
    if any(part in lowered for part in SENSITIVE_KEY_PARTS):
        return True
    return any(word.lower() == "pan" for word in _KEY_WORDS.findall(key))


def _redact_cards(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        digits = re.sub(r"[ -]", "", match.group(0))
        return CARD if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group(0)

    return _CARD_CANDIDATE.sub(replace, text)


def sanitize_text(text: str, *, limit: int = MAX_STRING) -> str:
    """Card numbers replaced, NUL characters removed (PostgreSQL refuses them), length capped."""
    text = _redact_cards(text.replace("\x00", ""))
    if len(text) > limit:
        text = f"{text[:limit]}...[truncated {len(text) - limit} chars]"
    return text


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # JSON has no NaN or Infinity
    if isinstance(value, str):
        return sanitize_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return sanitize_text(bytes(value).decode("utf-8", errors="replace"))
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        # Label and key only: a model's __str__ may query the database or fail.
        return f"{value._meta.label}:{value.pk}"
    try:
        return sanitize_text(str(value))
    except (TypeError, ValueError, AttributeError, LookupError):
        return f"<{type(value).__name__}>"


def _sanitize(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return "[too deep]"
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        items = list(value.items())
        for key, item in items[:MAX_ITEMS]:
            name = key if isinstance(key, str) else str(_scalar(key))
            out[name] = REDACTED if _is_sensitive_key(name) else _sanitize(item, depth + 1)
        if len(items) > MAX_ITEMS:
            out["[truncated]"] = f"{len(items) - MAX_ITEMS} more keys"
        return out
    if isinstance(value, list | tuple | set | frozenset):
        seq = list(value)
        out_list = [_sanitize(item, depth + 1) for item in seq[:MAX_ITEMS]]
        if len(seq) > MAX_ITEMS:
            out_list.append(f"[truncated: {len(seq) - MAX_ITEMS} more items]")
        return out_list
    return _scalar(value)


def sanitize(value: Any) -> Any:
    """A sanitized, JSON-ready copy of `value`.

    Values under sensitive keys become "[redacted]"; card numbers (13-19 digits passing the
    Luhn check) inside strings become "[card]"; strings over 2,000 characters are cut;
    lists keep their first 100 items plus a marker, dicts their first 100 keys plus a marker.
    """
    return _sanitize(value, 0)
