import copy
import datetime
from decimal import Decimal

from config.sanitize import CARD, REDACTED, sanitize


def test_secrets_are_redacted_by_key_at_any_depth():
    payload = {
        "username": "alice",
        "Password": "hunter2",
        "new_password1": "x",
        "headers": {
            "Authorization": "Bearer abc",
            "X-CSRFToken": "t",
            "X-Api-Key": "k",
            "Cookie": "sessionid=s",
        },
        "items": [{"api_key": "k", "amount": "12.50"}],
        "refresh_token": "r",
        "card_number": "4111111111111111",
        "cvv": "123",
        "iban": "DE89370400440532013000",
        "pan": "x",
        "company": "ACME",
    }
    clean = sanitize(payload)
    assert clean["username"] == "alice" and clean["company"] == "ACME"
    for key in ("Password", "new_password1", "refresh_token", "card_number", "cvv", "iban", "pan"):
        assert clean[key] == REDACTED, key
    assert set(clean["headers"].values()) == {REDACTED}
    assert clean["items"] == [{"api_key": REDACTED, "amount": "12.50"}]


def test_luhn_valid_card_numbers_are_redacted_inside_strings():
    clean = sanitize(
        {
            "note": "paid with 4111 1111 1111 1111 yesterday",
            "dashed": "5500-0000-0000-0004",
            "bare": "4012888888881881",
            "not_luhn": "4111 1111 1111 1112",
            "order_no": "1234567890123456",
            "short": "123456789012",
        }
    )
    assert clean["note"] == f"paid with {CARD} yesterday"
    assert clean["dashed"] == CARD and clean["bare"] == CARD
    assert clean["not_luhn"] == "4111 1111 1111 1112"
    assert clean["order_no"] == "1234567890123456"  # 16 digits, fails Luhn: kept
    assert clean["short"] == "123456789012"


def test_input_is_not_mutated():
    payload = {
        "password": "p",
        "nested": {"token": "t", "list": [1, 2, {"secret": "s"}]},
        "text": "card 4111111111111111",
    }
    before = copy.deepcopy(payload)
    sanitize(payload)
    assert payload == before


def test_long_strings_and_large_lists_are_cut():
    clean = sanitize(
        {"blob": "x" * 5000, "rows": list(range(250)), "big": {str(i): i for i in range(150)}}
    )
    assert len(clean["blob"]) < 2100 and clean["blob"].startswith("x" * 2000)
    assert clean["rows"][:100] == list(range(100)) and len(clean["rows"]) == 101
    assert "150" in clean["rows"][-1]
    assert len(clean["big"]) == 101 and "50 more" in clean["big"]["[truncated]"]


def test_non_json_values_become_strings(make_user):
    user = make_user(username="eve")
    clean = sanitize(
        {
            "amount": Decimal("12.50"),
            "when": datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
            "day": datetime.date(2025, 1, 2),
            "raw": b"bytes \xff",
            "user": user,
            "pair": (1, 2),
            "nan": float("nan"),
            5: "int key",
        }
    )
    assert clean["amount"] == "12.50"
    assert clean["when"] == "2025-01-02T03:04:05+00:00" and clean["day"] == "2025-01-02"
    assert clean["raw"].startswith("bytes ")
    assert clean["user"] == f"auth.User:{user.pk}"
    assert clean["pair"] == [1, 2] and clean["nan"] == "nan" and clean["5"] == "int key"


def test_scalars_and_deep_nesting():
    assert sanitize(None) is None and sanitize(3) == 3 and sanitize("4111111111111111") == CARD
    deep: dict = {}
    node = deep
    for _ in range(50):
        node["next"] = {}
        node = node["next"]
    flat = sanitize(deep)
    depth = 0
    while isinstance(flat, dict):
        flat = flat["next"]
        depth += 1
    assert flat == "[too deep]" and depth < 20
