"""Request and task metrics: what a process added up in memory, added to the stored minute
buckets in one statement per batch (INSERT ... ON CONFLICT DO UPDATE adding to the row), so
that two processes writing the same minute add up and nothing is read back first."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Sum

from monitoring.histogram import SLOTS, slot_of
from monitoring.models import RequestBucket, SlowQuery, SlowRequest, TaskBucket
from monitoring.sqlshape import sql_shape

# (minute, route, method, status class)
BucketKey = tuple[datetime, str, str, str]

SLOT_COLUMNS = [f"h{index:02d}" for index in range(SLOTS)]


def slot_sums() -> dict[str, Sum]:
    """Aggregates that add up each histogram column (a queryset's summed histogram)."""
    return {column: Sum(column) for column in SLOT_COLUMNS}


# Rows per statement: SQLite allows 32,766 parameters, PostgreSQL 65,535.
_BATCH = 500


@dataclass
class Tally:
    """One request bucket's figures as a process adds them up."""

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


def _upsert(
    model: type[models.Model],
    keys: Sequence[str],
    added: Sequence[str],
    largest: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Insert `rows` (values for keys, then added, then largest columns), or add each added
    column to the stored row with the same keys and keep the larger of each largest column."""
    table = model._meta.db_table
    quote = connection.ops.quote_name
    columns = [*keys, *added, *largest]
    sets = [f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in added]
    sets += [
        f"{quote(c)} = CASE WHEN excluded.{quote(c)} > {table}.{quote(c)} "
        f"THEN excluded.{quote(c)} ELSE {table}.{quote(c)} END"
        for c in largest
    ]
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(rows), _BATCH):
            chunk = rows[start : start + _BATCH]
            # Names from the model and constants; every value is a parameter.
            statement = (
                f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
                f"VALUES {', '.join([placeholders] * len(chunk))} "
                f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) "
                f"DO UPDATE SET {', '.join(sets)}"
            )
            cursor.execute(statement, [value for row in chunk for value in row])


def request_buckets_write(tallies: Mapping[BucketKey, Tally]) -> int:
    """Add `tallies` to the stored request buckets, in one transaction; how many buckets."""
    adapt = connection.ops.adapt_datetimefield_value
    rows = [
        [
            adapt(minute),
            route,
            method,
            status_class,
            t.count,
            t.duration_sum,
            t.queries,
            t.query_seconds,
            *t.slots,
            t.duration_max,
        ]
        # In key order: two writers locking the same rows take them in the same order (no
        # deadlock between them).
        for (minute, route, method, status_class), t in sorted(tallies.items())
    ]
    _upsert(
        RequestBucket,
        ["minute", "route", "method", "status_class"],
        ["count", "duration_sum", "queries", "query_seconds", *SLOT_COLUMNS],
        ["duration_max"],
        rows,
    )
    return len(rows)


def task_run_record(
    *, func: str, success: bool, finished: datetime, run_seconds: float, wait_seconds: float
) -> None:
    """Add one task run to its minute's bucket."""
    slots = [0] * SLOTS
    slots[slot_of(run_seconds)] = 1
    outcome = TaskBucket.Outcome.SUCCESS if success else TaskBucket.Outcome.FAILURE
    minute = finished.astimezone(UTC).replace(second=0, microsecond=0)
    row = [
        connection.ops.adapt_datetimefield_value(minute),
        func[: TaskBucket._meta.get_field("func").max_length or 200],
        outcome.value,
        1,
        run_seconds,
        wait_seconds,
        *slots,
        run_seconds,
    ]
    _upsert(
        TaskBucket,
        ["minute", "func", "outcome"],
        ["count", "run_seconds_sum", "wait_seconds_sum", *SLOT_COLUMNS],
        ["run_seconds_max"],
        [row],
    )


@dataclass
class SlowRecord:
    """A request that was slow, or that made slow queries (or both), as the middleware saw it."""

    at: datetime
    route: str
    method: str
    status: int
    seconds: float
    queries: int
    query_seconds: float
    request_id: str
    slow_request: bool
    slow_queries: list[tuple[str, float]] = field(default_factory=list)


def slow_records_write(records: Sequence[SlowRecord]) -> None:
    """Store the slow requests and the slow queries (as their shape), in one transaction."""
    requests = [
        SlowRequest(
            at=r.at,
            route=r.route,
            method=r.method,
            status=r.status,
            seconds=r.seconds,
            queries=r.queries,
            query_seconds=r.query_seconds,
            request_id=r.request_id,
        )
        for r in records
        if r.slow_request
    ]
    queries = [
        SlowQuery(at=r.at, route=r.route, sql=sql_shape(sql), seconds=took, request_id=r.request_id)
        for r in records
        for sql, took in r.slow_queries
    ]
    with transaction.atomic():
        SlowRequest.objects.bulk_create(requests)
        SlowQuery.objects.bulk_create(queries)
