"""Audit trail figures: events appended during postings, posting throughput with and without
the audit trail, and chain verification speed against bare hashlib over the same bytes.

    DATABASE_URL=postgres://... python benchmarks/audit.py [EVENTS]     (default 1,000,000)

1. Postings: the posting service records N entries (one transaction each) with the audit trail
   as shipped, then again with audit writes switched off in-process (the connection drops the
   held events), and prints both throughputs, the ratio, and the events appended per second.
2. Verification: EVENTS synthetic events (realistic sizes, a valid chain) are loaded with COPY,
   and vacuumed, then `chain_verify()` reads every event back and recomputes its hash. The
   baseline is hashlib alone over the very same canonical bytes, the floor any verifier pays.
3. Export: the same events streamed as JSON lines to nowhere, for the export rate.
"""

import datetime as dt
import hashlib
import json
import random
import statistics
import time
from dataclasses import dataclass
from decimal import Decimal

from _django import run_benchmark  # sets Django up: before any of the project's imports

# isort: split
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from audit import export, services
from audit.canonical import GENESIS_HASH, HASHED_FIELDS, canonical_bytes, format_time
from audit.models import AuditEvent
from audit.pending import HOOK as AUDIT_HOOK
from finance import services as finance_services
from finance.models import AccountType, EntrySource
from tests.factories import make_year

POSTINGS = 500
ROUNDS = 5
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


def load_events(n: int) -> float:
    """Write n chained events with COPY; return the seconds bare hashlib takes over their bytes
    (one tight loop over the very bytes that were hashed, timed as a whole)."""
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
    sha256 = hashlib.sha256
    start = time.perf_counter()
    for data in canonical:
        sha256(data).hexdigest()
    return time.perf_counter() - start


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
    """Events in the chain, seconds to load them, to hash their bytes alone, to verify them."""

    total: int
    load_s: float
    hash_s: float
    verify_s: float


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


def measure_verification(n: int) -> VerificationFigures:
    load_start = time.perf_counter()
    hash_s = load_events(n)
    load_s = time.perf_counter() - load_start
    # A table in service has been vacuumed; the first read after a bulk COPY would otherwise
    # pay for setting every row's hint bits, which no later verification pays again.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_auditevent")
    total = AuditEvent.objects.count()
    start = time.perf_counter()
    result = services.chain_verify(triggered_by="benchmark")
    verify_s = time.perf_counter() - start
    assert result.status == "ok", result.problems
    return VerificationFigures(total, load_s, hash_s, verify_s)


def measure_export() -> ExportFigures:
    """Every event exported as JSON lines to nowhere."""
    start = time.perf_counter()
    manifest = export.Manifest(format="jsonl", file="x", range=export.export_range())
    exported = sum(len(chunk) for chunk in export.export_chunks(manifest))
    export_s = time.perf_counter() - start
    return ExportFigures(manifest.count, exported, export_s)


def report(n: int, p: PostingFigures, v: VerificationFigures, e: ExportFigures) -> None:
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
    total, verify_s, hash_s = v.total, v.verify_s, v.hash_s
    print(f"  verification of {total:,} events (loaded by COPY in {v.load_s:.1f} s)")
    print(f"    chain_verify          : {total / verify_s:10,.0f} events/s ({verify_s:.1f} s)")
    print(f"    bare hashlib, same bytes: {n / hash_s:10,.0f} events/s ({hash_s:.1f} s for {n:,})")
    print(f"    ratio (verify / hashlib): {(verify_s / total) / (hash_s / n):.1f}x")
    print(
        f"  export as JSON lines: {e.count / e.export_s:,.0f} events/s "
        f"({e.size / 1e6:.0f} MB in {e.export_s:.1f} s)"
    )


def run(n: int) -> None:
    user, accounts, today = open_books()
    postings_figures = measure_postings(user, accounts, today)
    verification = measure_verification(n)
    report(n, postings_figures, verification, measure_export())


if __name__ == "__main__":
    run_benchmark(run, 1_000_000)
