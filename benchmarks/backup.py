"""Backup figures: a backup, its verification and a restore drill of a database holding a million
journal lines, against bare `pg_dump` and `pg_restore` of the same database in the same run.

    DATABASE_URL=postgres://... python benchmarks/backup.py [LINES]     (default 1,000,000)

1. Load: LINES/2 posted entries of two lines each, balances and sequence to match (the SQL of
   benchmarks/checks.py), two audit events per entry on a valid hash chain (COPY). VACUUM.
2. Baseline, before and after step 3 (their mean is compared): bare `pg_dump --format=custom`
   to a file, bare `pg_restore` of it into a new empty database (the engine's binaries).
3. Ledgerguard: backup_create, backup_verify, and a drill (drill_start, drill_run), with the
   steps inside timed by wrapping the functions that do them (pg_dump, packing, storing...).
4. Packing alone: the baseline's archive packed and unpacked plain, with zstd at
   BACKUP_COMPRESSION_LEVEL, and with zstd and encryption; and bare SHA-256 over it.
"""

import functools
import hashlib
import json
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from _django import figure, run_benchmark  # sets Django up: before any of the project's imports

# isort: split
from checks import ACCOUNTS, chart, insert_entries, insert_lines, match_balances_and_sequence
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

import backups.services.drill as drill_module
from audit.canonical import HASHED_FIELDS, canonical_bytes, format_time
from audit.models import ChainHead
from backups import crypto, services, storage
from backups.engines import DatabaseTarget, PgDumpEngine, pgdump, target_for
from backups.models import Backup, RestoreDrill
from finance.models import AccountType, JournalEntry
from tests.factories import make_year

AUDIT_COLUMNS = (*HASHED_FIELDS, "hash")
MB = 1_000_000


# --- loading -------------------------------------------------------------------------------


def load(lines: int) -> float:
    """LINES/2 posted entries of two lines each, balances, sequence, audit chain; seconds."""
    today = timezone.localdate()
    make_year(today.year)
    year_start = date(today.year, 1, 1)
    days = max((today - year_start).days, 1)  # dated up to yesterday: every period is open
    user = get_user_model().objects.create(username="bench")
    debit = chart("1", AccountType.ASSET, ACCOUNTS)
    credit = chart("4", AccountType.INCOME, ACCOUNTS)
    start = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        insert_entries(cur, lines // 2, year_start, days, user.pk)
        insert_lines(cur, debit, credit)
        match_balances_and_sequence(cur, lines // 2, year_start)
        copy_audit_chain(cur, user.pk)
        cur.execute("SET session_replication_role = origin")
        cur.execute("VACUUM ANALYZE")  # as tables in service are; sets the hint bits once
    return time.perf_counter() - start


# The events the services write for each entry: (action, changes), and changes as COPY takes them.
ENTRY_EVENTS = [
    (action, changes, json.dumps(changes, sort_keys=True, separators=(",", ":")))
    for action, changes in (
        ("journal_entry.created", {}),
        ("journal_entry.posted", {"status": ["approved", "posted"]}),
    )
]


def copy_audit_chain(cur, user_id: int) -> None:
    """Two events per posted entry (created, posted), chained after the head: hashed as
    audit/chain.py hashes them, one microsecond apart from the head's time on."""
    head = ChainHead.objects.get(pk=1)
    sequence, prev = head.sequence, head.hash
    when = head.occurred_at or timezone.now()
    # Read before the COPY starts: the connection runs nothing else until it ends.
    entries = JournalEntry.objects.filter(status="posted").order_by("id").values_list("id")
    entry_ids = [entry_id for (entry_id,) in entries]
    fixed = {"schema_version": 1, "actor_id": user_id, "actor_repr": f"bench (#{user_id})"}
    fixed |= {"ip": None, "user_agent": "", "request_id": "", "metadata": {}}
    with cur.copy(f"COPY audit_auditevent ({', '.join(AUDIT_COLUMNS)}) FROM STDIN") as copy:
        for entry_id in entry_ids:
            for action, changes, changes_text in ENTRY_EVENTS:
                sequence += 1
                when += timedelta(microseconds=1)
                content = {
                    **fixed,
                    "id": sequence,
                    "occurred_at": format_time(when),
                    "action": action,
                    "object_type": "finance.journalentry",
                    "object_id": str(entry_id),
                    "object_repr": f"JE {entry_id}",
                    "changes": changes,
                    "prev_hash": prev,
                }
                prev = hashlib.sha256(canonical_bytes(content)).hexdigest()
                row = {**content, "changes": changes_text, "metadata": "{}"}
                copy.write_row([*(row[name] for name in HASHED_FIELDS), prev])
    ChainHead.objects.filter(pk=1).update(sequence=sequence, hash=prev, occurred_at=when)


# --- timing the steps inside the services ----------------------------------------------------


@dataclass
class Steps:
    """Seconds, calls and nesting depth of each step (in the order first started), and each
    step's last result, while `instrumented`."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    depth: dict[str, int] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)
    level: int = 0

    def timed(self, label: str | Callable[..., str], func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            name = label(*args) if callable(label) else label
            self.depth.setdefault(name, self.level)
            self.level += 1
            start = time.perf_counter()
            try:
                self.last[name] = func(*args, **kwargs)
                return self.last[name]
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1
                self.level -= 1

        return wrapper


PACK = "crypto.pack: zstd, SHA-256 of archive and output"
RESTORE = "pg_restore into the scratch database (drill)"
STEPS: list[tuple[Any, str, str | Callable[..., str]]] = [
    (PgDumpEngine, "dump", "engine.dump: snapshot, row counts, pg_dump"),
    (pgdump, "run_tool", lambda argv, *args: tool_step(argv)),
    (crypto, "pack", PACK),
    (storage, "store", "storage.store: SHA-256, copy into BACKUP_DIR"),
    (storage, "_local_digest", "its SHA-256 of the packed file"),
    (storage, "fetch", "storage.fetch: copy out, SHA-256 (verify, drill)"),
    (crypto, "unpack", "crypto.unpack: zstd, SHA-256 checks (verify, drill)"),
    (PgDumpEngine, "check_archive", "engine.check_archive (verify)"),
    (PgDumpEngine, "_maintenance", "CREATE, DROP DATABASE of the scratch (drill)"),
    (PgDumpEngine, "inspect", "engine.inspect: row counts of the copy (drill)"),
    (drill_module, "_run_checks", "run_checks in a child process (drill)"),
    (drill_module, "_verify_audit", "verify_audit_chain in a child process (drill)"),
]


def tool_step(argv: list[str]) -> str:
    """Which step a client tool's run is."""
    if Path(argv[0]).name != "pg_restore":
        return Path(argv[0]).name
    if "--list" in argv:
        return "pg_restore --list"
    return "pg_restore --file /dev/null (every data block)" if "--file" in argv else RESTORE


@contextmanager
def instrumented() -> Iterator[Steps]:
    """The functions of STEPS wrapped to time them, and put back afterwards."""
    steps = Steps()
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in STEPS]
    try:
        for (owner, name, label), (_, _, original) in zip(STEPS, originals, strict=True):
            setattr(owner, name, steps.timed(label, original))
        yield steps
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


# --- the phases ------------------------------------------------------------------------------


@dataclass
class Baseline:
    dump_s: float
    restore_s: float
    size: int

    @property
    def total_s(self) -> float:
        return self.dump_s + self.restore_s


def measure_baseline(target: DatabaseTarget, archive: Path) -> Baseline:
    """Bare pg_dump --format=custom to `archive`, bare pg_restore into a new empty database."""
    engine = PgDumpEngine()
    dump = [engine.tool("pg_dump"), "--format=custom", "--no-password", "--file", str(archive)]
    _, dump_s = clock(pgdump.run_tool, [*dump, *pgdump.tool_arguments(target)], target)
    with engine.scratch(target) as empty:
        restore = [engine.tool("pg_restore"), "--no-password", *pgdump.tool_arguments(empty)]
        _, restore_s = clock(pgdump.run_tool, [*restore, str(archive)], empty)
    return Baseline(dump_s, restore_s, archive.stat().st_size)


@dataclass
class Figures:
    """Ledgerguard's phases: the rows they left, their seconds, the steps inside them."""

    backup: Backup
    drill: RestoreDrill
    backup_s: float
    verify_s: float
    drill_s: float
    steps: Steps

    @property
    def drill_restore_s(self) -> float:
        """The drill without its checks: fetch, unpack, scratch database, restore, compare."""
        return self.drill_s - (self.drill.checks_seconds or 0)


def measure_ledgerguard() -> Figures:
    with instrumented() as steps:
        backup, backup_s = clock(services.backup_create)
        backup, verify_s = clock(services.backup_verify, backup=backup)
        drill, drill_s = clock(
            lambda: services.drill_run(drill=services.drill_start(backup=backup))
        )
    return Figures(backup, drill, backup_s, verify_s, drill_s, steps)


def measure_packing(archive: Path, work: Path) -> list[tuple[str, float, float, int]]:
    """(how, pack seconds, unpack seconds, packed bytes) of the archive packed three ways, and
    bare SHA-256 over it ("SHA-256 alone", seconds, 0, 0); each the best of three."""
    key = crypto.decode_key(crypto.generate_key())
    level = settings.BACKUP_COMPRESSION_LEVEL
    rows = []
    for how, options in (
        ("plain", crypto.PackOptions(compression_level=None)),
        (f"zstd level {level}", crypto.PackOptions(compression_level=level)),
        (f"zstd level {level}, encrypted", crypto.PackOptions(compression_level=level, key=key)),
    ):
        runs = [pack_and_unpack(archive, work, options, key) for _ in range(3)]
        pack_s, unpack_s = min(r[0] for r in runs), min(r[1] for r in runs)
        rows.append((how, pack_s, unpack_s, runs[0][2]))
    rows.append(("SHA-256 alone", min(sha256_seconds(archive) for _ in range(3)), 0.0, 0))
    return rows


def pack_and_unpack(
    archive: Path, work: Path, options: crypto.PackOptions, key: bytes
) -> tuple[float, float, int]:
    packed, unpacked = work / "packed.lgb", work / "unpacked.dump"
    info, pack_s = clock(crypto.pack, archive, packed, options)
    _, unpack_s = clock(crypto.unpack, packed, unpacked, key)
    packed.unlink()
    unpacked.unlink()
    return pack_s, unpack_s, info.size


def sha256_seconds(path: Path) -> float:
    with path.open("rb") as source:
        return clock(hashlib.file_digest, source, "sha256")[1]


def clock(func: Callable, *args, **kwargs) -> tuple[Any, float]:
    """What func(*args, **kwargs) returns, and the seconds it took."""
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - start


# --- the report ------------------------------------------------------------------------------


def print_phases(figures: Figures, baselines: list[Baseline]) -> Baseline:
    """The baseline runs and their mean, then Ledgerguard's phases; returns the mean."""
    tools = f"{PgDumpEngine().tool('pg_dump')}, {PgDumpEngine().tool('pg_restore')}"
    print(
        f"  baseline: bare pg_dump --format=custom, bare pg_restore into an empty database\n"
        f"    ({tools})"
    )
    mean = Baseline(
        sum(b.dump_s for b in baselines) / len(baselines),
        sum(b.restore_s for b in baselines) / len(baselines),
        baselines[0].size,
    )
    for name, b in [*((f"run {i}", b) for i, b in enumerate(baselines, 1)), ("mean ", mean)]:
        print(
            f"    {name}: pg_dump {b.dump_s:6.1f} s, pg_restore {b.restore_s:6.1f} s, "
            f"total {b.total_s:6.1f} s (archive {b.size / MB:.1f} MB)"
        )
    backup, drill = figures.backup, figures.drill
    archive = figures.steps.last[PACK].source_size
    print("  Ledgerguard (between the two baseline runs)")
    print(
        f"    backup_create                 {figures.backup_s:6.1f} s (archive "
        f"{archive / MB:.1f} MB, stored {backup.size_bytes / MB:.1f} MB)"
    )
    print(f"    backup_verify                 {figures.verify_s:6.1f} s ({backup.status})")
    print(
        f"    drill without its checks      {figures.drill_restore_s:6.1f} s (fetch, unpack, "
        f"scratch database, compare; restore_seconds {drill.restore_seconds:.1f} s)"
    )
    checks, audit = drill.results["checks"], drill.results["audit"]
    print(
        f"    drill's checks + audit chain  {drill.checks_seconds:6.1f} s (checks_seconds; "
        f"checks {checks['status']}, chain {audit['status']}: {audit['events_checked']:,} events)"
    )
    print(f"    drill whole                   {figures.drill_s:6.1f} s ({drill.status})")
    return mean


def print_ratios(figures: Figures, base: Baseline) -> None:
    total = figures.backup_s + figures.verify_s + figures.drill_restore_s
    print("  ratios against the mean baseline (target: at most 1.3x)")
    print(
        f"    backup + verify + drill without checks / pg_dump + pg_restore: "
        f"{total:.1f} / {base.total_s:.1f} s = {total / base.total_s:.2f}x"
    )
    print(f"    backup_create / pg_dump: {figures.backup_s / base.dump_s:.2f}x")
    figure(
        "backup + verify + drill without checks",
        total,
        "s",
        baseline=base.total_s,
        baseline_name="pg_dump + pg_restore",
        target="<= 1.3x",
    )
    figure("backup_create", figures.backup_s, "s", baseline=base.dump_s, baseline_name="pg_dump")
    print(
        f"    drill's pg_restore / pg_restore: "
        f"{figures.drill.restore_seconds / base.restore_s:.2f}x; drill without checks / "
        f"pg_restore: {figures.drill_restore_s / base.restore_s:.2f}x"
    )
    own = total - figures.steps.seconds["pg_dump"] - figures.steps.seconds[RESTORE]
    print(
        f"    Ledgerguard's time beyond its own pg_dump and pg_restore runs: {own:.1f} s; added "
        f"to the baseline (free of the tools' run-to-run noise): "
        f"{(base.total_s + own) / base.total_s:.2f}x"
    )
    whole = figures.backup_s + figures.verify_s + figures.drill_s
    print(
        f"    backup + verify + whole drill (with checks and audit chain) / pg_dump + "
        f"pg_restore: {whole:.1f} / {base.total_s:.1f} s = {whole / base.total_s:.2f}x"
    )


def print_steps(figures: Figures, packing: list[tuple[str, float, float, int]]) -> None:
    print("  steps inside Ledgerguard's phases (seconds, calls), each under the one it is in")
    steps = figures.steps
    for label, depth in steps.depth.items():
        name = "  " * depth + label
        print(f"    {name:58} {steps.seconds[label]:6.1f} s ({steps.calls[label]})")
    print("  packing the baseline's archive alone (best of 3): pack, unpack, stored size")
    for how, pack_s, unpack_s, size in packing:
        if size:
            print(f"    {how:28} {pack_s:5.1f} s, {unpack_s:5.1f} s, {size / MB:7.1f} MB")
        else:
            print(f"    {how:28} {pack_s:5.1f} s")


def use_directories(root: Path) -> None:
    """Backups and their scratch files under `root`: in the settings of this process, and in
    the environment of the drill's child process (which reads checkpoints in BACKUP_DIR)."""
    (root / "backups").mkdir()
    (root / "work").mkdir()
    settings.BACKUP_DIR = root / "backups"
    settings.BACKUP_WORK_DIR = str(root / "work")
    os.environ["BACKUP_DIR"] = str(settings.BACKUP_DIR)


def run(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ledgerguard-bench-backup-") as tmp:
        root = Path(tmp)
        use_directories(root)
        load_s = load(n)
        with connection.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            (size,) = cur.fetchone()
        target = target_for("default")
        first = measure_baseline(target, root / "baseline-1.dump")
        figures = measure_ledgerguard()
        second = measure_baseline(target, root / "baseline-2.dump")
        packing = measure_packing(root / "baseline-1.dump", root)
    counts = figures.backup.row_counts
    print(
        f"backup benchmark on PostgreSQL {connection.pg_version // 10000}: "
        f"{counts['finance_journalline']:,} journal lines, "
        f"{counts['finance_journalentry']:,} entries, {counts['audit_auditevent']:,} audit "
        f"events (loaded in {load_s:.1f} s); database {size / MB:.0f} MB"
    )
    key = "on" if settings.BACKUP_ENCRYPTION_KEY else "off"
    print(
        f"  BACKUP_COMPRESSION={settings.BACKUP_COMPRESSION} (zstd level "
        f"{settings.BACKUP_COMPRESSION_LEVEL}), encryption {key} (BACKUP_ENCRYPTION_KEY)"
    )
    base = print_phases(figures, [first, second])
    print_ratios(figures, base)
    print_steps(figures, packing)


if __name__ == "__main__":
    run_benchmark(run, 1_000_000)
