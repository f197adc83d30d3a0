"""Walking the hash chain: the rule for one link, and the fast walk over PostgreSQL.

The verdict on an event depends on that event and the event stored before it, nothing else:
its id must follow, its prev_hash must be the stored hash before it, its content must hash to
its own stored hash, and it must not be dated before it (`link_problem`, which the generic walk
in audit/services/verification.py shares). So a range can be cut into segments walked apart,
each from the stored row before it, and the first problem of the first segment that has one is
the first problem a walk from the start finds: the same finding, whatever the cut.

The fast walk reads a segment as binary results in keyset chunks (each value loaded in C as an
int or a str: no datetimes, no parsed JSON, no dicts per row) and spells each row's
canonical bytes with audit.canonical.RowCanonicalizer.
`python -m audit.chainwalk` walks one segment as its own process, with its own connection: the
job as JSON on stdin (the connection's parameters travel there, never in argv or the
environment), the result as JSON on stdout. It imports nothing that needs Django, so that a
worker starts in a fraction of a second.
"""

import hashlib
import json
import resource
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.abc import Loader
from psycopg.pq import Format
from psycopg.rows import tuple_row

from audit.canonical import ROW_COLUMNS, RowCanonicalizer, micros_of

# How each column crosses the wire: binary results, each value loaded in C as an int or a str.
# occurred_at is PostgreSQL's binary timestamp, an int8 of microseconds since 2000-01-01 UTC
# (audit.canonical.PG_EPOCH); jsonb's binary form is a version byte and its text.
_CASTS = {"schema_version": "::int8", "actor_id": "::int8"}


def _binary_loader(name: str) -> type[Loader]:
    """psycopg's own binary loader of `name` (its C one, when installed)."""
    loader = psycopg.adapters.get_loader(psycopg.adapters.types[name].oid, Format.BINARY)
    assert loader is not None, name
    return loader


_INT8, _TEXT = _binary_loader("int8"), _binary_loader("text")
_PREV_HASH, _HASH = ROW_COLUMNS.index("prev_hash"), ROW_COLUMNS.index("hash")
# Fixed column and table names; the values are parameters. Keyset chunks: each query reads at
# most CHUNK rows (at most two chunks are alive at once, ~1 kB a row), so memory does not grow
# with the segment, and no transaction stays open.
_SELECT = (
    "SELECT "  # noqa: S608
    + ", ".join(name + _CASTS.get(name, "") for name in ROW_COLUMNS)
    + " FROM audit_auditevent WHERE id > %s AND id <= %s ORDER BY id LIMIT %s"
)
CHUNK = 10_000
_BEFORE = (
    "SELECT id, hash, occurred_at FROM audit_auditevent WHERE id >= %s AND id < %s "
    "ORDER BY id DESC LIMIT 1"
)

Problem = tuple[int, str, str]  # (event id, code, message), as _Result.chain takes it


@dataclass
class State:
    """Where a walk stands before its next row: the id it expects, and the stored hash and
    time of the row before (a time the reader compares: a datetime, or micros)."""

    expected: int
    prev: str
    prev_time: Any = None


@dataclass
class Segment:
    """What walking a segment left: rows read, its first problem, the state after its last
    row, and the recomputed hashes of the events a checkpoint names."""

    state: State
    checked: int = 0
    problem: Problem | None = None
    hashes: dict[int, str] = field(default_factory=dict)
    peak_rss_kib: int = 0  # a worker's own peak memory, for whoever watches it (benchmarks)

    def as_json(self) -> dict[str, Any]:
        s = self.state
        return {
            "state": [s.expected, s.prev, s.prev_time],
            "checked": self.checked,
            "problem": self.problem,
            "hashes": self.hashes,
            "peak_rss_kib": self.peak_rss_kib,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Segment":
        problem = data["problem"]
        return cls(
            state=State(*data["state"]),
            checked=int(data["checked"]),
            problem=(int(problem[0]), str(problem[1]), str(problem[2])) if problem else None,
            hashes={int(k): str(v) for k, v in data["hashes"].items()},
            peak_rss_kib=int(data.get("peak_rss_kib", 0)),
        )


def link_problem(
    event_id: int, prev_hash: str, stored_hash: str, time: Any, *, state: State, recomputed: str
) -> Problem | None:
    """What is wrong with this event as the next link after `state`, or None."""
    expected = state.expected
    if event_id != expected:
        return expected, "chain.missing_event", f"events #{expected} to #{event_id - 1} are missing"
    if prev_hash != state.prev:
        return (
            event_id,
            "chain.link_broken",
            f"event #{event_id} does not link to the hash of event #{event_id - 1}: "
            f"an event before it was removed or reordered, or event #{event_id - 1} "
            "was changed and given a new hash",
        )
    if recomputed != stored_hash:
        return (
            event_id,
            "chain.content_changed",
            f"event #{event_id} was changed after it was written",
        )
    if state.prev_time is not None and time < state.prev_time:
        # Appending never goes back in time (audit/chain.py): a rewrite that re-dated an
        # event, so that the checkpoints' schedule would not notice, shows here.
        return (
            event_id,
            "chain.time_reversed",
            f"event #{event_id} is dated before event #{event_id - 1}: the chain was "
            "rewritten and re-dated",
        )
    return None


def _chunks(conn: psycopg.Connection[Any], lo: int, hi: int) -> Iterator[list[tuple[Any, ...]]]:
    """Events `lo`..`hi` in id order, CHUNK rows at a time, as ROW_COLUMNS tuples."""
    # A plain cursor whatever the connection's factory (Django's is a client-side one).
    cursor = psycopg.Cursor(conn, row_factory=tuple_row)
    cursor.adapters.register_loader("timestamptz", _INT8)
    cursor.adapters.register_loader("jsonb", _TEXT)
    after = lo - 1
    with cursor:
        while True:
            cursor.execute(_SELECT, [after, hi, CHUNK], binary=True)
            chunk = cursor.fetchall()
            if not chunk:
                return
            yield chunk
            after = chunk[-1][0]


def walk_segment(
    conn: psycopg.Connection[Any],
    *,
    lo: int,
    hi: int,
    state: State,
    checkpointed: Collection[int],
) -> Segment:
    """Recompute and link events `lo`..`hi` from `state` (times in micros), in chunks: memory
    does not grow with the segment. After the first problem rows are only counted (and their
    hashes kept for the checkpoints), as the generic walk does."""
    canonical, sha256 = RowCanonicalizer(), hashlib.sha256
    expected, prev, prev_time = state.expected, state.prev, state.prev_time
    segment = Segment(state=state)
    hashes, problem, checked = segment.hashes, None, 0
    for chunk in _chunks(conn, lo, hi):
        checked += len(chunk)
        for row in chunk:
            recomputed = sha256(canonical(row)).hexdigest()
            event_id, time = row[0], row[2]
            if event_id in checkpointed:
                hashes[event_id] = recomputed
            if problem is not None:
                continue
            stored = row[_HASH]
            if (
                event_id != expected
                or row[_PREV_HASH] != prev
                or recomputed != stored
                or (prev_time is not None and time < prev_time)
            ):
                problem = link_problem(
                    event_id,
                    row[_PREV_HASH],
                    stored,
                    time,
                    state=State(expected, prev, prev_time),
                    recomputed=recomputed,
                )
            prev, prev_time, expected = stored, time, event_id + 1
    segment.checked, segment.problem = checked, problem
    segment.state = State(expected, prev, prev_time)
    return segment


def state_before(conn: psycopg.Connection[Any], *, start: int, lo: int, initial: State) -> State:
    """The state a walk from `start` (which begins in `initial`) reaches just before `lo`:
    that of the last stored event between them, if any."""
    if lo <= start:
        return initial
    row = conn.execute(_BEFORE, [start, lo]).fetchone()
    if row is None:
        return initial
    return State(row[0] + 1, row[1], micros_of(row[2]))


def _peak_rss_kib() -> int:
    """This process's peak resident memory since it started this program. getrusage's
    ru_maxrss survives exec, so it would report the parent's size when it forked; Linux's
    VmHWM belongs to the new program's memory alone."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """One worker's segment: connect, find where the walk stands at `lo`, walk to `hi`."""
    with psycopg.connect(**job["connection"], autocommit=True) as conn:
        if job.get("role"):  # Django's OPTIONS["assume_role"], which it sets on connecting
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(job["role"])))
        initial = State(*job["initial"])
        state = state_before(conn, start=job["start"], lo=job["lo"], initial=initial)
        segment = walk_segment(
            conn, lo=job["lo"], hi=job["hi"], state=state, checkpointed=set(job["checkpointed"])
        )
    segment.peak_rss_kib = _peak_rss_kib()
    return segment.as_json()


if __name__ == "__main__":
    json.dump(run_job(json.load(sys.stdin)), sys.stdout)
