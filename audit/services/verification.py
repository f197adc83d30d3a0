"""Verifying the chain: recompute every hash, check the links, the head and the signed
checkpoints, store the result and announce it (audit/signals.py) to whoever alerts on it."""

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import PIPE
from typing import Any, NamedTuple

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from django_q.tasks import async_task

from audit import signals
from audit.canonical import GENESIS_HASH, content_of, event_hash, format_time, micros_of
from audit.chainwalk import Segment, State, link_problem, walk_segment
from audit.exceptions import InvalidRange
from audit.models import AuditEvent, ChainHead, Checkpoint, Verification, VerificationStatus
from audit.selectors import audit_verify_range_size, event_rows
from audit.services.checkpoints import checkpoint_signature_problem, stored_checkpoints
from audit.services.record import audit_record

logger = logging.getLogger("ledgerguard.audit")

# Walks shorter than this run in this process; longer ones in worker processes, one per CPU
# (at most MAX_WORKERS; PARALLEL_WORKERS pins the number), each over its own connection.
PARALLEL_MIN_EVENTS = 100_000
PARALLEL_WORKERS: int | None = None
MAX_WORKERS = 8
_ROOT = Path(__file__).resolve().parents[2]
_WORKER = [sys.executable, "-m", "audit.chainwalk"]


class _Result:
    def __init__(self) -> None:
        self.problems: list[dict[str, Any]] = []
        self.first_bad_id: int | None = None
        self.chain_broken = False

    def chain(self, event_id: int, code: str, message: str) -> None:
        if not self.chain_broken:
            self.chain_broken = True
            self.first_bad_id = event_id
        self.problems.append(
            {"kind": "chain", "code": code, "event_id": event_id, "message": message}
        )

    def checkpoint(self, code: str, message: str, **where: Any) -> None:
        self.problems.append({"kind": "checkpoint", "code": code, "message": message, **where})

    @property
    def status(self) -> str:
        if self.chain_broken:
            return VerificationStatus.BROKEN
        if self.problems:
            return VerificationStatus.CHECKPOINT_MISMATCH
        return VerificationStatus.OK


class _Checkpoints(NamedTuple):
    """The checkpoints in range, read once: database rows, storage copies, unreadable files."""

    db: list[Checkpoint]
    files: list[dict[str, Any]]
    unreadable: list[str]

    @property
    def sequences(self) -> set[int]:
        return {c.sequence for c in self.db} | {f["sequence"] for f in self.files}


@dataclass
class _Walk:
    """What walking the events left: their count, the last linked event and its hash, and the
    recomputed hashes of the events a checkpoint names."""

    checked: int = 0
    last_id: int = 0
    last_hash: str = GENESIS_HASH
    hashes: dict[int, str] = field(default_factory=dict)


def _checkpoint_snapshot(from_id: int, to_id: int, elsewhere: Path | None = None) -> _Checkpoints:
    """The checkpoints in range, database and storage copies (and those in `elsewhere`), read
    once: one signed while the verification runs is left for the next run, not half-checked."""
    db = list(
        Checkpoint.objects.filter(sequence__gte=from_id, sequence__lte=to_id).order_by("sequence")
    )
    files, unreadable = stored_checkpoints()
    if elsewhere is not None:
        more, more_unreadable = stored_checkpoints(elsewhere)
        files, unreadable = files + more, unreadable + more_unreadable
    return _Checkpoints(db, [f for f in files if from_id <= f["sequence"] <= to_id], unreadable)


def _check_checkpoint(
    result: _Result,
    hashes: dict[int, str],
    where: dict[str, Any],
    *,
    sequence: int,
    hash: str,
    created_at: str,
    kid: str,
    signature: str,
) -> None:
    """One copy of a checkpoint: its signature, and the event it signed as the chain has it."""
    problem = checkpoint_signature_problem(
        sequence=sequence, hash=hash, created_at=created_at, kid=kid, signature=signature
    )
    if problem is not None:
        message = (
            f"checkpoint at #{sequence} is signed with unknown key {kid}"
            if problem == "checkpoint.unknown_key"
            else f"checkpoint at #{sequence} has an invalid signature"
        )
        result.checkpoint(problem, message, **where)
    if sequence not in hashes:
        result.checkpoint(
            "checkpoint.missing_event",
            f"checkpoint at #{sequence} names an event that is not in the chain",
            **where,
        )
    elif hashes[sequence] != hash:
        result.checkpoint(
            "checkpoint.hash_mismatch",
            f"event #{sequence} does not have the hash its checkpoint signed",
            **where,
        )


def _check_checkpoints(result: _Result, hashes: dict[int, str], snapshot: _Checkpoints) -> int:
    """Every copy in `snapshot` against the recomputed `hashes`; the number of copies checked."""
    for path in snapshot.unreadable:
        result.checkpoint(
            "checkpoint.unreadable", f"checkpoint file {path} cannot be read", file=path
        )
    for c in snapshot.db:
        _check_checkpoint(
            result,
            hashes,
            {"checkpoint_id": c.pk, "sequence": c.sequence},
            sequence=c.sequence,
            hash=c.hash,
            created_at=format_time(c.created_at),
            kid=c.key_id,
            signature=c.signature,
        )
    signed_in_db = {(c.sequence, c.hash, c.signature) for c in snapshot.db}
    for f in snapshot.files:
        where = {"file": f["file"], "sequence": f["sequence"]}
        _check_checkpoint(
            result,
            hashes,
            where,
            sequence=f["sequence"],
            hash=str(f.get("hash")),
            created_at=str(f.get("created_at")),
            kid=str(f.get("key_id")),
            signature=str(f.get("signature")),
        )
        if (f["sequence"], f.get("hash"), f.get("signature")) not in signed_in_db:
            result.checkpoint(
                "checkpoint.not_in_database",
                f"checkpoint at #{f['sequence']} in storage is missing from the "
                "database or differs from it",
                **where,
            )
    return len(snapshot.db) + len(snapshot.files)


def _initial_state(result: _Result, start: int) -> State:
    """Where a walk from `start` begins. A range that starts after #1 trusts the stored hash
    of the event before it."""
    if start <= 1:
        return State(start, GENESIS_HASH, None)
    before = AuditEvent.objects.filter(id=start - 1).values_list("hash", "occurred_at").first()
    if before is None:
        result.chain(start - 1, "chain.missing_event", f"event #{start - 1} is missing")
        return State(start, GENESIS_HASH, None)
    return State(start, before[0], before[1])


def _walk_generic(start: int, upper: int, state: State, checkpointed: set[int]) -> list[Segment]:
    """Any engine: rows through the event_rows selector, hashed by canonical_bytes itself."""
    segment = Segment(state=state)
    for row in event_rows(start, upper):
        segment.checked += 1
        recomputed = event_hash(content_of(row))
        if row["id"] in checkpointed:
            segment.hashes[row["id"]] = recomputed
        if segment.problem is not None:
            continue  # nothing after the first break can be trusted; keep counting
        segment.problem = link_problem(
            row["id"],
            row["prev_hash"],
            row["hash"],
            row["occurred_at"],
            state=segment.state,
            recomputed=recomputed,
        )
        segment.state = State(row["id"] + 1, row["hash"], row["occurred_at"])
    return [segment]


def _walk_postgresql(start: int, upper: int, state: State, checkpointed: set[int]) -> list[Segment]:
    """PostgreSQL: binary COPY and the per-row canonical spelling (audit/chainwalk.py), in
    segments walked by worker processes when the range is long enough to pay for them."""
    if state.prev_time is not None:
        state = State(state.expected, state.prev, micros_of(state.prev_time))
    workers = _worker_count(upper - start + 1)
    if workers > 1:
        try:
            return _walk_in_workers(start, upper, state, checkpointed, workers)
        except _WorkerFailed as exc:  # e.g. no processes allowed here: the same walk, in here
            logger.warning("Audit verification workers failed (%s); verifying in-process", exc)
    connection.ensure_connection()
    raw = connection.connection
    return [walk_segment(raw, lo=start, hi=upper, state=state, checkpointed=checkpointed)]


# One walk per engine; any other engine takes the generic one.
_WALKERS: dict[str, Callable[[int, int, State, set[int]], list[Segment]]] = {
    "postgresql": _walk_postgresql,
}


def _worker_count(events: int) -> int:
    """Worker processes for a walk of `events`: one per CPU this process may use, for long
    walks outside a transaction (workers cannot see what it has not committed)."""
    if events < PARALLEL_MIN_EVENTS or connection.in_atomic_block:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(PARALLEL_WORKERS or cpus or 1, MAX_WORKERS, events))


def _segments(start: int, upper: int, count: int) -> list[tuple[int, int]]:
    """`start`..`upper` cut into `count` contiguous ranges of (nearly) equal length."""
    size, extra = divmod(upper - start + 1, count)
    bounds, lo = [], start
    for i in range(count):
        hi = lo + size + (1 if i < extra else 0) - 1
        bounds.append((lo, hi))
        lo = hi + 1
    return bounds


class _WorkerFailed(Exception):
    pass


def _walk_in_workers(
    start: int, upper: int, state: State, checkpointed: set[int], workers: int
) -> list[Segment]:
    """Each segment in its own process with its own connection (`python -m audit.chainwalk`),
    started together and read back in order."""
    params = connection.get_connection_params()
    conninfo = {k: v for k, v in params.items() if isinstance(v, str | int | float | bool)}
    initial = [state.expected, state.prev, state.prev_time]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for lo, hi in _segments(start, upper, workers):
            job = {
                "connection": conninfo,
                "role": connection.settings_dict["OPTIONS"].get("assume_role"),
                "start": start,
                "lo": lo,
                "hi": hi,
                "initial": initial,
                "checkpointed": sorted(i for i in checkpointed if lo <= i <= hi),
            }
            # A fixed argv: this interpreter and our own module; the job goes through stdin.
            proc = subprocess.Popen(_WORKER, cwd=_ROOT, stdin=PIPE, stdout=PIPE, stderr=PIPE)  # noqa: S603
            procs.append(proc)
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(job).encode())
            proc.stdin.close()
        segments = []
        for proc in procs:
            # stdin is already closed (communicate() would flush it); read stderr after stdout:
            # a worker writes at most a traceback there, far below a pipe's buffer.
            assert proc.stdout is not None and proc.stderr is not None
            out, err = proc.stdout.read(), proc.stderr.read()
            if proc.wait() != 0:
                raise _WorkerFailed(err.decode(errors="replace").strip()[-500:])
            segments.append(Segment.from_json(json.loads(out)))
        return segments
    except OSError as exc:
        raise _WorkerFailed(str(exc)) from exc
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()


def _walk(result: _Result, start: int, upper: int, checkpointed: set[int]) -> _Walk:
    """Recompute and link events `start`..`upper`, with the walk of this engine; the first
    problem of the first segment that has one is the chain's first problem."""
    state = _initial_state(result, start)
    walker = _WALKERS.get(connection.vendor, _walk_generic)
    walk = _Walk()
    segments = walker(start, upper, state, checkpointed)
    for segment in segments:
        walk.checked += segment.checked
        walk.hashes.update(segment.hashes)
        if segment.problem is not None and not result.chain_broken:
            result.chain(*segment.problem)
    last = segments[-1].state
    walk.last_id, walk.last_hash = last.expected - 1, last.prev
    return walk


def _check_head(result: _Result, head: ChainHead, walk: _Walk) -> None:
    """A full verification also holds the head to the last event: removed tail events show."""
    if head.sequence > walk.last_id:
        result.chain(
            walk.last_id + 1,
            "chain.missing_event",
            f"the chain head is at #{head.sequence} but the events end at "
            f"#{walk.last_id}: events at the end were removed",
        )
    elif head.sequence != walk.last_id or (walk.last_id and head.hash != walk.last_hash):
        result.chain(
            head.sequence, "chain.head_mismatch", "the chain head does not match the last event"
        )


def chain_verify(
    *,
    from_id: int | None = None,
    to_id: int | None = None,
    triggered_by: str = "system",
    checkpoints_dir: Path | None = None,
) -> Verification:
    """Recompute every hash from `from_id` to `to_id` (the whole chain by default), check the
    links, the head and the signed checkpoints; store, announce (`chain_verified`, which the
    alerts about the trail answer) and audit the result.

    A range that starts after #1 trusts the stored hash of the event before it.
    `checkpoints_dir`: also check the checkpoint files there (the witness's copies).
    """
    started = timezone.now()
    full = from_id is None and to_id is None
    start = max(from_id or 1, 1)
    # The head pins the end, so events appended while this runs are left for the next run.
    head = ChainHead.objects.filter(pk=1).first()
    end = head.sequence if head else 0
    upper = min(to_id, end) if to_id is not None else end
    if not full and upper < start:
        # A typo must not page anyone with a "broken chain": there is nothing there to check.
        raise InvalidRange(
            f"no events between #{start} and #{to_id or end}; the chain ends at #{end}"
        )
    result = _Result()
    checkpoints = _checkpoint_snapshot(start, upper, checkpoints_dir)
    walk = _walk(result, start, upper, checkpoints.sequences)
    if full and not result.chain_broken and head is not None:
        _check_head(result, head, walk)
    checkpoints_checked = _check_checkpoints(result, walk.hashes, checkpoints)
    # Stored and announced before its own audit event, which may fail when appending is what
    # is broken: the alert must not depend on the trail being writable.
    verification = Verification.objects.create(
        started_at=started,
        finished_at=timezone.now(),
        triggered_by=triggered_by[:200],
        from_id=from_id,
        to_id=to_id,
        events_checked=walk.checked,
        checkpoints_checked=checkpoints_checked,
        status=result.status,
        first_bad_id=result.first_bad_id,
        problems=result.problems[:100],
    )
    signals.chain_verified.send(sender=Verification, verification=verification)
    _record(verification)
    return verification


def _record(verification: Verification) -> None:
    try:
        audit_record(
            action="audit.chain_verified",
            obj=verification,
            metadata={
                "status": verification.status,
                "from_id": verification.from_id,
                "to_id": verification.to_id,
                "events_checked": verification.events_checked,
                "first_bad_id": verification.first_bad_id,
            },
        )
    except DatabaseError:
        logger.exception("Could not record verification %s in the audit trail", verification.pk)


def chain_verify_or_queue(
    *, from_id: int | None = None, to_id: int | None = None, triggered_by: str
) -> Verification | str:
    """A verification asked for by a person (API, admin): run at once when it reads at most
    AUDIT_VERIFY_SYNC_LIMIT events, else queued for a worker. Returns the Verification, or
    the queued task's id."""
    if audit_verify_range_size(from_id=from_id, to_id=to_id) <= settings.AUDIT_VERIFY_SYNC_LIMIT:
        return chain_verify(from_id=from_id, to_id=to_id, triggered_by=triggered_by)
    task_id: str = async_task(
        "audit.tasks.verify_chain",
        from_id,
        to_id,
        triggered_by[:200],
        task_name="audit.verify_chain (requested)",
    )
    return task_id
