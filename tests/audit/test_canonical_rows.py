"""The fast verifier's per-row spelling (audit.canonical.RowCanonicalizer) gives exactly the
bytes of canonical_bytes, the definition, for any row: existing chains must keep verifying.

Without a database, over generated rows (hypothesis): odd strings, NULLs, nested and unsorted
JSON, big and float numbers, times from year 1 to 9999 in any zone. On PostgreSQL, over odd
rows stored for real and read back both ways: the ORM's reading with canonical_bytes, and the
fast walk's binary chunks with the per-row spelling.
"""

import datetime as dt
import hashlib
import json

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import chainwalk
from audit.canonical import (
    GENESIS_HASH,
    RowCanonicalizer,
    canonical_bytes,
    content_of,
    format_time,
    micros_of,
)
from audit.models import AuditEvent
from audit.selectors import event_rows
from tests.audit.helpers import record

# What PostgreSQL can hold in text: anything but NUL (and no lone surrogates, as UTF-8).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
ODD = st.sampled_from(['"', "\\", "\n", "\t", "\x1f", "\x7f", "\u2028", "é", "日本", "😀", "", " "])
STRINGS = TEXT | ODD | st.lists(ODD, max_size=6).map("".join)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | STRINGS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(STRINGS, inner, max_size=4),
    max_leaves=12,
)
ZONES = st.sampled_from(
    [dt.UTC, dt.timezone(dt.timedelta(hours=14)), dt.timezone(dt.timedelta(hours=-12, minutes=-30))]
)
TIMES = st.datetimes(
    min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31), timezones=ZONES
) | st.datetimes(
    min_value=dt.datetime(1, 1, 1),
    max_value=dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
    timezones=st.just(dt.UTC),
)


def jsonb_text(value, *, ascii_only: bool = False) -> str:
    """Some JSON text of `value` in an order and spacing that is not the canonical one."""
    if isinstance(value, dict):
        value = dict(reversed(list(value.items())))
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=ascii_only)


@st.composite
def rows(draw):
    """(a row as the fast walk reads it, the same event's content as content_of gives it)."""
    moment = draw(TIMES)
    content = {
        "id": draw(st.integers(min_value=1, max_value=2**63 - 1)),
        "schema_version": draw(st.integers(min_value=0, max_value=32767)),
        "occurred_at": moment,
        "actor_id": draw(st.none() | st.integers(min_value=1, max_value=2**31 - 1)),
        "actor_repr": draw(STRINGS),
        "ip": draw(st.none() | STRINGS),
        "user_agent": draw(STRINGS),
        "request_id": draw(STRINGS),
        "action": draw(STRINGS),
        "object_type": draw(STRINGS),
        "object_id": draw(STRINGS),
        "object_repr": draw(STRINGS),
        "changes": draw(JSON),
        "metadata": draw(JSON),
        "prev_hash": draw(STRINGS),
    }
    ascii_only = draw(st.booleans())
    texts = {k: jsonb_text(content[k], ascii_only=ascii_only) for k in ("changes", "metadata")}
    row = [content[name] for name in chainwalk.ROW_COLUMNS[:-1]] + ["stored hash"]
    row[2] = micros_of(moment)
    row[12], row[13] = "\x01" + texts["changes"], "\x01" + texts["metadata"]
    as_read = {**content, **{k: json.loads(v) for k, v in texts.items()}}
    return tuple(row), content_of(as_read)


@settings(max_examples=400, deadline=None)
@given(rows())
def test_the_row_spelling_is_canonical_bytes_for_any_row(case):
    row, content = case
    assert RowCanonicalizer()(row) == canonical_bytes(content)


@settings(max_examples=50, deadline=None)
@given(st.lists(rows(), min_size=2, max_size=8))
def test_one_canonicalizer_spells_a_sequence_of_rows_as_each_alone(cases):
    """Its caches (the day, the second, short JSON texts) never leak one row into the next."""
    canonical = RowCanonicalizer()
    for row, content in cases + cases:
        assert canonical(row) == canonical_bytes(content)


def test_nulls_where_the_schema_forbids_them_take_the_generic_spelling():
    """A superuser can drop a NOT NULL too: such a row is spelled as canonical_bytes spells it."""
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    row = (7, None, micros_of(moment), None, None, None, "ua", "r", "a", "t", "1", "x")
    row += (None, "\x01{}", GENESIS_HASH, "h")
    content = dict(zip(chainwalk.ROW_COLUMNS, row, strict=False))
    content.update(occurred_at=format_time(moment), metadata={})
    assert RowCanonicalizer()(row) == canonical_bytes(content)


def test_times_are_spelled_as_format_time_spells_them():
    canonical = RowCanonicalizer()
    for moment in (
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 29, 1, 0, 0, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    ):
        second, micro = divmod(micros_of(moment), 1_000_000)
        assert f"{canonical.clock(second)}.{micro:06d}Z" == format_time(moment)


# The same rows stored in PostgreSQL and read back both ways -----------------------------------

ODD_JSON = [
    '{"a": 1.50, "b": 1e5, "c": 1E-7, "d": -0, "e": 12345678901234567890123, "f": 0.1}',
    '{"zz": 1, "a": 2, "é": 3, "日": 4, "aa": {"b": [1, "x", null, true, false, {}]}}',
    '{"quote\\"d": "back\\\\slash", "ctl": "\\u0001\\n\\t", "line": "\\u2028", "": ""}',
    '[1, 2.0, "3", [[]], {"k": {"k": {"k": 1.25e-300}}}]',
    '"just a string"',
    "null",
    "123.4560",
    "{}",
]


@pytest.mark.postgres
def test_stored_odd_rows_read_back_the_same_bytes_both_ways(db):
    moments = [
        dt.datetime(1000, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=dt.UTC),
    ]
    strings = ['"', "\\", "\n\t\x01", "é日本😀", "", "a\u2028b", "x" * 200]
    with connection.cursor() as cursor:
        for i, text in enumerate(ODD_JSON * 2):
            s = strings[i % len(strings)]
            cursor.execute(
                "INSERT INTO audit_auditevent (id, schema_version, occurred_at, actor_id, "
                "actor_repr, ip, user_agent, request_id, action, object_type, object_id, "
                "object_repr, changes, metadata, prev_hash, hash) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s)",
                [
                    1000 + i,
                    i,
                    moments[i % len(moments)],
                    None if i % 3 else i,
                    s,
                    None if i % 2 else s[:45],
                    s,
                    s[:64],
                    s[:100],
                    s[:100],
                    s[:64],
                    s,
                    ODD_JSON[-1 - i % len(ODD_JSON)],
                    text,
                    s[:64],
                    f"{i:064x}",
                ],
            )
    last = 1000 + len(ODD_JSON) * 2 - 1
    generic = [canonical_bytes(content_of(row)) for row in event_rows(1000, last)]
    canonical = RowCanonicalizer()
    connection.ensure_connection()
    fast = [
        canonical(row)
        for chunk in chainwalk._chunks(connection.connection, 1000, last)
        for row in chunk
    ]
    assert fast == generic and len(fast) == len(ODD_JSON) * 2


@pytest.mark.postgres
def test_recorded_events_hash_to_their_stored_hash_through_the_fast_read(db):
    record(5)
    connection.ensure_connection()
    canonical = RowCanonicalizer()
    for row in next(chainwalk._chunks(connection.connection, 1, 5)):
        assert hashlib.sha256(canonical(row)).hexdigest() == row[-1]
    assert AuditEvent.objects.count() == 5
