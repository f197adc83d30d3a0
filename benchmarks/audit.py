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
from decimal import Decimal

from _django import run_benchmark  # sets Django up: before any of the project's imports

# isort: split
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from audit import export, services
from audit.canonical import GENESIS_HASH, canonical_bytes, format_time
from audit.models import AuditEvent
from audit.pending import HOOK as AUDIT_HOOK
from finance import services as finance_services
from finance.models import AccountType, EntrySource
from tests.factories import make_year

POSTINGS = 500
ROUNDS = 5


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
    rnd = random.Random(11)
    actions = [
        "journal_entry.posted",
        "journal_entry.approved",
        "account.updated",
        "auth.login",
        "alert.acknowledged",
        "dead_letter.retried",
    ]
    # After every event already in the chain (the postings', dated at their commit): the
    # verification refuses an event dated before the one it follows (a fixed date did, once the
    # clock passed it).
    base = timezone.now()
    canonical: list[bytes] = []
    columns = (
        "id",
        "schema_version",
        "occurred_at",
        "actor_id",
        "actor_repr",
        "ip",
        "user_agent",
        "request_id",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "changes",
        "metadata",
        "prev_hash",
        "hash",
    )
    raw = connection.connection
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY audit_auditevent ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for i in range(n):
            event_id = start_id + i
            when = base + dt.timedelta(milliseconds=event_id * 10)
            actor = rnd.randint(1, 50)
            content = {
                "id": event_id,
                "schema_version": 1,
                "occurred_at": format_time(when),
                "actor_id": actor,
                "actor_repr": f"user{actor} (#{actor})",
                "ip": f"10.0.{actor}.{rnd.randint(1, 254)}",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0",
                "request_id": f"{rnd.getrandbits(128):032x}",
                "action": rnd.choice(actions),
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
            data = canonical_bytes(content)
            canonical.append(data)
            digest = hashlib.sha256(data).hexdigest()
            prev = digest
            content["hash"] = digest
            content["occurred_at"] = when
            content["changes"] = json_text(content["changes"])
            content["metadata"] = json_text(content["metadata"])
            copy.write_row([content[c] for c in columns])
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


def json_text(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def run(n: int) -> None:
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
    events //= ROUNDS

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

    start = time.perf_counter()
    manifest = export.Manifest(format="jsonl", file="x", range=export.export_range())
    exported = sum(len(chunk) for chunk in export.export_chunks(manifest))
    export_s = time.perf_counter() - start

    print(f"audit benchmark on PostgreSQL {connection.pg_version // 10000}")
    print(f"  postings ({POSTINGS} entries of 2 lines per round, one transaction each)")
    print(
        f"    with audit trail    : {POSTINGS / with_s:8.1f} entries/s "
        f"({with_s * 1000 / POSTINGS:.2f} ms/entry), {events} events appended "
        f"= {events / with_s:.1f} events/s"
    )
    print(
        f"    without audit writes: {POSTINGS / without_s:8.1f} entries/s "
        f"({without_s * 1000 / POSTINGS:.2f} ms/entry)"
    )
    spread = ", ".join(f"{r:.2f}" for r in ratios)
    print(
        f"    ratio (with / without): {with_s / without_s:.2f}x (median of {ROUNDS} "
        f"alternated rounds; per-round ratios {spread})"
    )
    print(f"  verification of {total:,} events (loaded by COPY in {load_s:.1f} s)")
    print(f"    chain_verify          : {total / verify_s:10,.0f} events/s ({verify_s:.1f} s)")
    print(f"    bare hashlib, same bytes: {n / hash_s:10,.0f} events/s ({hash_s:.1f} s for {n:,})")
    print(f"    ratio (verify / hashlib): {(verify_s / total) / (hash_s / n):.1f}x")
    print(
        f"  export as JSON lines: {manifest.count / export_s:,.0f} events/s "
        f"({exported / 1e6:.0f} MB in {export_s:.1f} s)"
    )


if __name__ == "__main__":
    run_benchmark(run, 1_000_000)
