"""Audit trail figures: events appended during postings, posting throughput with and without
the audit trail, and chain verification speed against bare hashlib over the same bytes.

    DATABASE_URL=postgres://... python benchmarks/audit.py [EVENTS]     (default 1,000,000)

1. Postings: the posting service records N entries (one transaction each) with the audit trail
   as shipped, then again with audit writes switched off in-process (the connection drops the
   held events), and prints both throughputs, the ratio, and the events appended per second.
2. Verification at 10^4, 10^5 and 10^6 events (those up to EVENTS): synthetic events (realistic
   sizes, a valid chain) are loaded with COPY up to that size and vacuumed, then `chain_verify()`
   reads every event back and recomputes its hash, best of 3 runs, as shipped (PostgreSQL's fast
   walk, in worker processes from PARALLEL_MIN_EVENTS on). The baseline is hashlib alone over
   the very same canonical bytes, best of 3, the floor any verifier pays. Also: the fast walk in
   this one process, and the generic walk (SQLite's, through the event_rows selector) once; the
   memory: the verification's peak Python allocations in this process (tracemalloc, in a
   separate run of the in-process walk: it slows what it watches) and the largest worker's
   peak RSS (the worker processes' getrusage).
3. Export: the same events streamed as JSON lines to nowhere, for the export rate.
"""

import datetime as dt
import hashlib
import json
import os
import random
import statistics
import time
import tracemalloc
from dataclasses import dataclass
from decimal import Decimal

from _django import figure, run_benchmark  # sets Django up: before the project's imports

# isort: split
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from audit import export, services
from audit.canonical import GENESIS_HASH, HASHED_FIELDS, canonical_bytes, format_time
from audit.models import AuditEvent
from audit.pending import HOOK as AUDIT_HOOK
from audit.services import verification as verification_service
from finance import services as finance_services
from finance.models import AccountType, EntrySource
from tests.factories import make_year

POSTINGS = 500
ROUNDS = 5
SIZES = (10_000, 100_000, 1_000_000)
RUNS = 3  # best of: the machine is shared
ACTIONS = [
    "journal_entry.posted",
    "journal_entry.approved",
    "account.updated",
    "auth.login",
    "alert.acknowledged",
    "dead_letter.retried",
]
COLUMNS = (*HASHED_FIELDS, "hash")  # the table's columns, in the COPY's order


def postings(user, accounts, today) -> tuple[float, int]:
    rnd = random.Random(3)
    before = AuditEvent.objects.count()
    start = time.perf_counter()
    for _ in range(POSTINGS):
        amount = Decimal(rnd.randint(100, 100_000)) / 100
        finance_services.journal_entry_record(
            entry_date=today,
            description="bench",
            actor=user,
            source=EntrySource.SYSTEM,
            lines=[
                {"account": accounts[0], "side": "D", "amount": amount},
                {"account": rnd.choice(accounts[1:]), "side": "C", "amount": amount},
            ],
        )
    return time.perf_counter() - start, AuditEvent.objects.count() - before


def load_events(n: int) -> list[bytes]:
    """Write n more chained events with COPY; return their canonical bytes, for the baseline."""
    start_id = (AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    prev = AuditEvent.objects.filter(id=start_id - 1).values_list("hash", flat=True).first()
    prev = prev or GENESIS_HASH
    # After every event already in the chain (the postings', dated at their commit): the
    # verification refuses an event dated before the one it follows (a fixed date did, once the
    # clock passed it).
    base = timezone.now()
    raw = connection.connection
    canonical, prev = copy_events(raw, n, start_id=start_id, prev=prev, base=base)
    with raw.cursor() as cur:
        cur.execute(
            "UPDATE audit_chainhead SET sequence = %s, hash = %s, occurred_at = %s WHERE id = 1",
            [start_id + n - 1, prev, base + dt.timedelta(milliseconds=(start_id + n - 1) * 10)],
        )
    raw.commit()
    return canonical


def hashlib_seconds(canonical: list[bytes]) -> float:
    """Best of RUNS: one tight loop of bare hashlib over the very bytes that were hashed."""
    sha256, best = hashlib.sha256, float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        for data in canonical:
            sha256(data).hexdigest()
        best = min(best, time.perf_counter() - start)
    return best


def copy_events(raw, n: int, *, start_id: int, prev: str, base) -> tuple[list[bytes], str]:
    """COPY n events chained after `prev`; return their canonical bytes and the last hash."""
    rnd = random.Random(11)
    canonical: list[bytes] = []
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY audit_auditevent ({', '.join(COLUMNS)}) FROM STDIN") as copy,
    ):
        for i in range(n):
            event_id = start_id + i
            when = base + dt.timedelta(milliseconds=event_id * 10)
            content = event_content(rnd, i, event_id=event_id, when=when, prev=prev)
            data = canonical_bytes(content)
            canonical.append(data)
            digest = hashlib.sha256(data).hexdigest()
            prev = digest
            content["hash"] = digest
            content["occurred_at"] = when
            content["changes"] = json_text(content["changes"])
            content["metadata"] = json_text(content["metadata"])
            copy.write_row([content[c] for c in COLUMNS])
    return canonical, prev


def event_content(rnd: random.Random, i: int, *, event_id: int, when, prev: str) -> dict:
    """A realistic event's content, as the chain hashes it."""
    actor = rnd.randint(1, 50)
    return {
        "id": event_id,
        "schema_version": 1,
        "occurred_at": format_time(when),
        "actor_id": actor,
        "actor_repr": f"user{actor} (#{actor})",
        "ip": f"10.0.{actor}.{rnd.randint(1, 254)}",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0",
        "request_id": f"{rnd.getrandbits(128):032x}",
        "action": rnd.choice(ACTIONS),
        "object_type": "finance.journalentry",
        "object_id": str(rnd.randint(1, 10**6)),
        "object_repr": f"JE-2026-{rnd.randint(1, 999999):06d}",
        "changes": {"status": ["pending_approval", "posted"]},
        "metadata": {
            "number": f"JE-2026-{i:06d}",
            "lines": 2,
            "totals": {"USD": str(Decimal(rnd.randint(1, 10**7)) / 100)},
        },
        "prev_hash": prev,
    }


def json_text(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass
class PostingFigures:
    """Median seconds per round with and without the audit trail, per-round ratios, and the
    events one round appended."""

    with_s: float
    without_s: float
    ratios: list[float]
    events: int


@dataclass
class VerificationFigures:
    """One size: events in the chain, synthetic events hashed by the baseline, seconds (best
    of RUNS) to verify as shipped and to hash alone; seconds for the fast walk in this process
    and for the generic walk (one run each); the in-process walk's peak Python allocations and
    the largest worker's peak RSS so far, in MB."""

    total: int
    hashed: int
    verify_s: float
    hash_s: float
    inprocess_s: float
    generic_s: float
    peak_mb: float
    worker_rss_mb: float

    @property
    def ratio(self) -> float:
        """Cost per event of the verification over that of bare hashlib."""
        return (self.verify_s / self.total) / (self.hash_s / self.hashed)


@dataclass
class ExportFigures:
    count: int
    size: int
    export_s: float


def open_books() -> tuple[object, list[int], dt.date]:
    """This year's periods, a user, a bank account and five income accounts."""
    today = timezone.localdate()
    make_year(today.year)
    user = get_user_model().objects.create(username="bench")
    accounts = [
        finance_services.account_create(
            code="1000", name="Bank", type=AccountType.ASSET, currency="USD"
        ).pk,
        *(
            finance_services.account_create(
                code=f"40{i:02d}", name=f"Income {i}", type=AccountType.INCOME, currency="USD"
            ).pk
            for i in range(5)
        ),
    ]
    return user, accounts, today


def measure_postings(user, accounts, today) -> PostingFigures:
    postings(user, accounts, today)  # warm-up
    hold = connection.hold

    def hold_all_but_audit(hook, item):
        if hook != AUDIT_HOOK:
            hold(hook, item)

    with_runs, without_runs, events = [], [], 0
    for _ in range(ROUNDS):  # alternated, so that drift on a shared machine hits both sides
        seconds, appended = postings(user, accounts, today)
        with_runs.append(seconds)
        events += appended
        connection.hold = hold_all_but_audit  # audit writes off, in this process only
        try:
            seconds, none = postings(user, accounts, today)
        finally:
            connection.hold = hold
        assert none == 0
        without_runs.append(seconds)
    with_s, without_s = statistics.median(with_runs), statistics.median(without_runs)
    ratios = sorted(w / o for w, o in zip(with_runs, without_runs, strict=True))
    return PostingFigures(with_s, without_s, ratios, events // ROUNDS)


WORKER_PEAKS: list[int] = []  # each worker's peak RSS in KiB, as it reported it


def watch_workers() -> None:
    """Keep the peak RSS every worker process reports (audit.chainwalk.run_job)."""
    walk = verification_service._walk_in_workers

    def watched(*args):
        segments = walk(*args)
        WORKER_PEAKS.extend(segment.peak_rss_kib for segment in segments)
        return segments

    verification_service._walk_in_workers = watched


def verify_once(**overrides) -> tuple[float, int]:
    """Seconds for one full chain_verify() (with module settings `overrides`), events checked."""
    saved = {name: getattr(verification_service, name) for name in overrides}
    for name, value in overrides.items():
        setattr(verification_service, name, value)
    try:
        start = time.perf_counter()
        result = services.chain_verify(triggered_by="benchmark")
        seconds = time.perf_counter() - start
    finally:
        for name, value in saved.items():
            setattr(verification_service, name, value)
    assert result.status == "ok", result.problems
    return seconds, result.events_checked


def measure_verification(canonical: list[bytes]) -> VerificationFigures:
    # A table in service has been vacuumed; the first read after a bulk COPY would otherwise
    # pay for setting every row's hint bits, which no later verification pays again.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_auditevent")
    WORKER_PEAKS.clear()
    runs = [verify_once() for _ in range(RUNS)]
    verify_s, total = min(runs)
    inprocess_s, _ = verify_once(PARALLEL_MIN_EVENTS=10**15)
    generic_s, _ = verify_once(_WALKERS={})
    tracemalloc.start()
    verify_once(PARALLEL_MIN_EVENTS=10**15)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    worker_rss = max(WORKER_PEAKS, default=0)
    hash_s = hashlib_seconds(canonical)
    return VerificationFigures(
        total,
        len(canonical),
        verify_s,
        hash_s,
        inprocess_s,
        generic_s,
        peak / 2**20,
        worker_rss / 1024,
    )


def measure_verifications(n: int) -> list[VerificationFigures]:
    """Load the chain up to each size in turn and verify it whole."""
    canonical: list[bytes] = []
    figures = []
    watch_workers()
    for size in [s for s in SIZES if s < n] + [n]:
        canonical += load_events(size - len(canonical))
        figures.append(measure_verification(canonical))
    return figures


def measure_export() -> ExportFigures:
    """Every event exported as JSON lines to nowhere."""
    start = time.perf_counter()
    manifest = export.Manifest(format="jsonl", file="x", range=export.export_range())
    exported = sum(len(chunk) for chunk in export.export_chunks(manifest))
    export_s = time.perf_counter() - start
    return ExportFigures(manifest.count, exported, export_s)


def report(p: PostingFigures, vs: list[VerificationFigures], e: ExportFigures) -> None:
    print(f"audit benchmark on PostgreSQL {connection.pg_version // 10000}")
    print(f"  postings ({POSTINGS} entries of 2 lines per round, one transaction each)")
    print(
        f"    with audit trail    : {POSTINGS / p.with_s:8.1f} entries/s "
        f"({p.with_s * 1000 / POSTINGS:.2f} ms/entry), {p.events} events appended "
        f"= {p.events / p.with_s:.1f} events/s"
    )
    print(
        f"    without audit writes: {POSTINGS / p.without_s:8.1f} entries/s "
        f"({p.without_s * 1000 / POSTINGS:.2f} ms/entry)"
    )
    spread = ", ".join(f"{r:.2f}" for r in p.ratios)
    print(
        f"    ratio (with / without): {p.with_s / p.without_s:.2f}x (median of {ROUNDS} "
        f"alternated rounds; per-round ratios {spread})"
    )
    figure(
        "postings with the audit trail",
        POSTINGS / p.with_s,
        "entries/s",
        baseline=POSTINGS / p.without_s,
        baseline_name="without audit writes",
    )
    figure("events appended during postings", p.events / p.with_s, "events/s")
    workers = verification_service.PARALLEL_WORKERS or len(os.sched_getaffinity(0))
    print(
        f"  verification of the whole chain (best of {RUNS}; in {workers} worker processes "
        f"from {verification_service.PARALLEL_MIN_EVENTS:,} events on)"
    )
    for v in vs:
        print(f"    {v.total:,} events ({v.hashed:,} synthetic)")
        print(f"      chain_verify            : {v.total / v.verify_s:10,.0f} events/s")
        print(f"      bare hashlib, same bytes: {v.hashed / v.hash_s:10,.0f} events/s")
        print(f"      ratio (verify / hashlib): {v.ratio:.1f}x")
        print(f"      fast walk, this process : {v.total / v.inprocess_s:10,.0f} events/s")
        print(f"      generic walk (SQLite's) : {v.total / v.generic_s:10,.0f} events/s")
        workers_memory = (
            f"largest worker {v.worker_rss_mb:.0f} MB peak RSS"
            if v.worker_rss_mb
            else "no workers at this size"
        )
        print(
            f"      memory: in-process walk peak {v.peak_mb:.1f} MB (tracemalloc), {workers_memory}"
        )
        record_verification(v)
    print(
        f"  export as JSON lines: {e.count / e.export_s:,.0f} events/s "
        f"({e.size / 1e6:.0f} MB in {e.export_s:.1f} s)"
    )
    figure("export as JSON lines", e.count / e.export_s, "events/s")


def record_verification(v: VerificationFigures) -> None:
    size, hashlib_rate = f"{v.hashed:.0e}".replace("+0", ""), v.hashed / v.hash_s
    target = ">= 300000/s and >= 1/6 of hashlib" if v.hashed >= 1_000_000 else ""
    figure(
        f"verification {size} events",
        v.total / v.verify_s,
        "events/s",
        baseline=hashlib_rate,
        baseline_name="bare hashlib, same bytes",
        target=target,
    )
    figure(
        f"verification {size} events, one process",
        v.total / v.inprocess_s,
        "events/s",
        baseline=hashlib_rate,
        baseline_name="bare hashlib, same bytes",
    )
    figure(
        f"verification {size} events, generic walk",
        v.total / v.generic_s,
        "events/s",
        baseline=hashlib_rate,
        baseline_name="bare hashlib, same bytes",
    )
    figure(f"verification {size} events, in-process peak", v.peak_mb, "MB (tracemalloc)")
    if v.worker_rss_mb:
        figure(f"verification {size} events, largest worker", v.worker_rss_mb, "MB RSS")


def run(n: int) -> None:
    user, accounts, today = open_books()
    postings_figures = measure_postings(user, accounts, today)
    verifications = measure_verifications(n)
    report(postings_figures, verifications, measure_export())


if __name__ == "__main__":
    run_benchmark(run, 1_000_000)
