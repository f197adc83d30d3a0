"""A statement's shape: what it does, without the values it did it with. The ORM sends its
parameters apart (`%s`); raw SQL may carry literals in its text. Both are stripped, and lists
of placeholders collapse, so that one statement has one shape however many ids it named."""

import re

MAX_LENGTH = 2000

_STRING = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w$.\"])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w\"])")
_PLACEHOLDER_LIST = re.compile(r"\(\s*(?:%s|\?)(?:\s*,\s*(?:%s|\?))+\s*\)")
_VALUES_ROWS = re.compile(r"(VALUES\s*\([^()]*\))(?:\s*,\s*\([^()]*\))+", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def sql_shape(sql: str) -> str:
    shape = _STRING.sub("?", sql)
    shape = _NUMBER.sub("?", shape)
    shape = _PLACEHOLDER_LIST.sub("(...)", shape)
    shape = _VALUES_ROWS.sub(r"\1, ...", shape)
    shape = _SPACE.sub(" ", shape).strip()
    return shape[:MAX_LENGTH]
