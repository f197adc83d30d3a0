"""Request metrics: what each process aggregated in memory, added to the stored minute buckets
in one statement per batch (INSERT ... ON CONFLICT DO UPDATE adding to the row), so that two
processes writing the same minute add up and nothing is read back first."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from monitoring.histogram import SLOTS
from monitoring.models import RequestBucket

# (minute, route, method, status class)
BucketKey = tuple[datetime, str, str, str]

_SLOT_COLUMNS = [f"h{index:02d}" for index in range(SLOTS)]
_ADDED = ["count", "duration_sum", "queries", "query_seconds", *_SLOT_COLUMNS]
_COLUMNS = ["minute", "route", "method", "status_class", *_ADDED, "duration_max"]
# Rows per statement: SQLite allows 32,766 parameters, PostgreSQL 65,535.
_BATCH = 500


@dataclass
class Tally:
    """One bucket's figures as a process adds them up."""

    count: int = 0
    duration_sum: float = 0.0
    duration_max: float = 0.0
    queries: int = 0
    query_seconds: float = 0.0
    slots: list[int] = field(default_factory=lambda: [0] * SLOTS)

    def merge(self, other: "Tally") -> None:
        self.count += other.count
        self.duration_sum += other.duration_sum
        self.duration_max = max(self.duration_max, other.duration_max)
        self.queries += other.queries
        self.query_seconds += other.query_seconds
        for index, value in enumerate(other.slots):
            self.slots[index] += value


def _statement(rows: int) -> str:
    table = RequestBucket._meta.db_table
    quote = connection.ops.quote_name
    placeholders = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    added = ", ".join(f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in _ADDED)
    longest = (
        f"{quote('duration_max')} = CASE WHEN excluded.duration_max > {table}.duration_max "
        f"THEN excluded.duration_max ELSE {table}.duration_max END"
    )
    # Names from the model and constants; every value is a parameter.
    columns = ", ".join(quote(c) for c in _COLUMNS)
    values = ", ".join([placeholders] * rows)
    upsert = "ON CONFLICT (minute, route, method, status_class) DO UPDATE SET"
    return f"INSERT INTO {table} ({columns}) VALUES {values} {upsert} {added}, {longest}"  # noqa: S608


def request_buckets_write(tallies: Mapping[BucketKey, Tally]) -> int:
    """Add `tallies` to the stored buckets, in one transaction; the number of buckets."""
    items = list(tallies.items())
    adapt = connection.ops.adapt_datetimefield_value
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(items), _BATCH):
            chunk = items[start : start + _BATCH]
            params: list[Any] = []
            for (minute, route, method, status_class), tally in chunk:
                params += [adapt(minute), route, method, status_class]
                params += [tally.count, tally.duration_sum, tally.queries, tally.query_seconds]
                params += [*tally.slots, tally.duration_max]
            cursor.execute(_statement(len(chunk)), params)
    return len(items)
