"""A statement's shape: what it does, without the values it did it with. The ORM sends its
parameters apart (`%s`); raw SQL may carry literals in its text (strings, escape and dollar
quoted ones, numbers) and comments. All are stripped, and lists of placeholders collapse, so
that one statement has one shape however many ids it named."""

import re

MAX_LENGTH = 2000

_DOLLAR = re.compile(r"\$(\w*)\$.*?\$\1\$", re.S)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_STRING = re.compile(r"(?:(?<!\w)[EeBbXxNn])?'(?:[^'\\]|''|\\.)*'")
_NUMBER = re.compile(r"(?<![\w$\"])-?(?:0[xX][0-9a-fA-F]+|\d*\.?\d+(?:[eE][-+]?\d+)?)(?![\w\"])")
_PLACEHOLDER_LIST = re.compile(r"\(\s*(?:%s|\?)(?:\s*,\s*(?:%s|\?))+\s*\)")
_VALUES_ROWS = re.compile(r"(VALUES\s*\([^()]*\))(?:\s*,\s*\([^()]*\))+", re.IGNORECASE)
# `"t"."id" = %s OR "t"."id" = %s OR ...` (the ORM's Q(...) | Q(...) over a list): one term.
_OR_CHAIN = re.compile(r"(?<![\w\".])((?:\"[^\"]+\"\.)?\"[^\"]+\" = (?:%s|\?))(?: OR \1)+")
_SPACE = re.compile(r"\s+")


def sql_shape(sql: str) -> str:
    # The regexes see a bounded text (an unclosed quote in a long statement would otherwise
    # cost them time that grows with its square); the shape is cut to MAX_LENGTH anyway.
    shape = _COMMENT.sub(" ", _DOLLAR.sub("?", sql[: 2 * MAX_LENGTH]))
    shape = _STRING.sub("?", shape)
    shape = _NUMBER.sub("?", shape)
    shape = _PLACEHOLDER_LIST.sub("(...)", shape)
    shape = _VALUES_ROWS.sub(r"\1, ...", shape)
    shape = _SPACE.sub(" ", shape).strip()
    shape = _OR_CHAIN.sub(r"\1 OR ...", shape)
    return shape[:MAX_LENGTH]
