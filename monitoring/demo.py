"""The demo's metrics (config/demo.py, `manage.py seed_demo`): a year of Northwind's traffic,
tasks, database growth, slow requests and queries, and a few error groups.

What goes through the services (they take a time): the request buckets
(request_buckets_write), the slow requests and queries (slow_records_write), the daily
statistics of the days the buckets cover and every day's storage figures (daily_stats_compute,
daily_storage_compute), the error groups (error_record, error_group_resolve) and the
thresholds' first reading (thresholds_evaluate). Written directly with bulk_create, since no
service back-dates them: the database snapshots (the service measures the database now),
the task buckets (task_run_record adds one run a call), and the daily statistics of the days
before the buckets (their minute buckets would long be purged); the error groups' first and
last sightings are moved back after error_record, which always records now.

Grain: request buckets per route every 10 minutes for the last 8 days, every minute for the
last 2 hours; task buckets per function every 15 minutes for the last 8 days; one snapshot a
day (and one now).
"""

import math
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta

from config.demo import DemoContext, DemoHistory
from monitoring.histogram import BOUNDS, SLOTS, percentile
from monitoring.models import (
    DailyStatistic,
    DatabaseSnapshot,
    ErrorGroup,
    ErrorStatus,
    RequestBucket,
    SnapshotEngine,
    TaskBucket,
)
from monitoring.services import (
    daily_stats_compute,
    error_group_resolve,
    error_record,
    request_buckets_write,
    thresholds_evaluate,
)
from monitoring.services.daily import daily_storage_compute
from monitoring.services.metrics import BucketKey, SlowRecord, Tally, slow_records_write

BUCKET_DAYS = 8  # today and the 7 days before it have minute buckets
FINE_MINUTES = 120  # the last two hours: a bucket a minute
COARSE = timedelta(minutes=10)
TASK_STEP = timedelta(minutes=15)

FAST = (0.30, 0.35, 0.20, 0.08, 0.03, 0.02, 0.015, 0.005, 0, 0, 0, 0, 0, 0, 0)
MEDIUM = (0.02, 0.08, 0.25, 0.30, 0.15, 0.08, 0.08, 0.03, 0.01, 0, 0, 0, 0, 0, 0)
SLOW = (0, 0, 0.02, 0.05, 0.08, 0.15, 0.35, 0.20, 0.08, 0.04, 0.025, 0.005, 0, 0, 0)

# route, method, requests an hour at a weekday's peak, latency, share answered 5xx, queries
ROUTES: list[tuple[str, str, float, Sequence[float], float, int]] = [
    ("entry-list", "GET", 240, FAST, 0.001, 4),
    ("entry-detail", "GET", 120, FAST, 0.001, 3),
    ("entry-post", "POST", 30, MEDIUM, 0.008, 14),
    ("trial-balance", "GET", 12, SLOW, 0.004, 9),
    ("balances", "GET", 60, MEDIUM, 0.002, 6),
    ("token-obtain", "POST", 20, MEDIUM, 0.0, 3),
    ("admin:index", "GET", 25, MEDIUM, 0.0, 11),
    ("health-ready", "GET", 60, FAST, 0.0, 1),
]
# function, runs per 15 minutes, run time profile, share failed
TASKS: list[tuple[str, float, Sequence[float], float]] = [
    ("monitoring.tasks.evaluate_thresholds", 15, FAST, 0.0),
    ("monitoring.tasks.take_database_snapshot", 3, MEDIUM, 0.002),
    ("alerts.tasks.escalate_alerts", 15, FAST, 0.001),
    ("integrity.tasks.run_scheduled_checks", 0.25, SLOW, 0.02),
]
TABLES = [  # table, share of the database, bytes per row
    ("audit_auditevent", 0.34, 900),
    ("finance_journalline", 0.22, 250),
    ("monitoring_requestbucket", 0.16, 220),
    ("finance_journalentry", 0.09, 400),
    ("monitoring_errorevent", 0.04, 3000),
]
SLOW_SQL = [
    'SELECT "finance_journalline"."account_id", SUM("finance_journalline"."amount") FROM '
    '"finance_journalline" INNER JOIN "finance_journalentry" ON ("finance_journalline".'
    '"entry_id" = "finance_journalentry"."id") WHERE "finance_journalentry"."date" <= '
    "'2026-11-30' GROUP BY 1",
    'SELECT COUNT(*) FROM "audit_auditevent" WHERE "audit_auditevent"."at" >= '
    "'2026-11-01 00:00:00'",
    'UPDATE "finance_accountbalance" SET "balance" = "balance" + 125.00 WHERE "account_id" = 17',
]
VOLUME_BYTES = 100 * 10**9


def _allot(count: int, weights: Sequence[float]) -> list[int]:
    """`count` spread over the histogram by `weights` (largest remainders), adding up."""
    total = sum(weights)
    shares = [count * w / total for w in weights]
    slots = [int(s) for s in shares]
    for index in sorted(range(SLOTS), key=lambda i: shares[i] - slots[i], reverse=True)[
        : count - sum(slots)
    ]:
        slots[index] += 1
    return slots


def _slower(weights: Sequence[float], by: float) -> list[float]:
    """Move a share `by` of every slot one slot up (a slower day)."""
    moved = [w * (1 - by) for w in weights]
    for index in range(SLOTS - 1):
        moved[index + 1] += weights[index] * by
    return moved


MIDDLES = [(0.0 if i == 0 else BOUNDS[i - 1]) / 2 + BOUNDS[i] / 2 for i in range(len(BOUNDS))]
MIDDLES.append(BOUNDS[-1] * 1.2)


def _seconds(slots: Sequence[int]) -> tuple[float, float]:
    """(the time taken, the longest) for a histogram, at its slots' middles."""
    top = max((i for i, n in enumerate(slots) if n), default=None)
    return sum(n * m for n, m in zip(slots, MIDDLES, strict=True)), (
        0.0 if top is None else MIDDLES[top]
    )


def _load(moment: datetime, year_progress: float) -> float:
    """Traffic at `moment` as a share of the peak: office hours, weekends, a growing year."""
    hour = moment.hour + moment.minute / 60
    office = 0.15 + 0.85 * max(0.0, math.sin(math.pi * (hour - 7) / 11)) if 7 <= hour <= 18 else 0.1
    weekend = 0.3 if moment.weekday() >= 5 else 1.0
    return office * weekend * (0.6 + 0.4 * year_progress)


def _count(expected: float, ctx: DemoContext) -> int:
    return int(expected * ctx.rnd.uniform(0.8, 1.2) + ctx.rnd.random())


def _tallies(
    ctx: DemoContext, minute: datetime, span_minutes: int, progress: float, incident: bool
) -> dict[BucketKey, Tally]:
    tallies: dict[BucketKey, Tally] = {}
    load = _load(minute, progress)
    for route, method, peak, profile, failing, queries in ROUTES:
        n = _count(peak * load * span_minutes / 60, ctx)
        if not n:
            continue
        weights = _slower(profile, 0.6) if incident and route == "trial-balance" else profile
        failing = 0.05 if incident and route == "entry-post" else failing
        errors = min(n, int(n * failing + ctx.rnd.random() * (failing > 0)))
        client = min(n - errors, int(n * 0.02 + ctx.rnd.random() * 0.5))
        for status, k in (("2xx", n - errors - client), ("4xx", client), ("5xx", errors)):
            if k:
                slots = _allot(k, weights)
                total, top = _seconds(slots)
                tallies[(minute, route, method, status)] = Tally(
                    count=k,
                    duration_sum=total,
                    duration_max=top,
                    queries=k * queries,
                    query_seconds=total * 0.4,
                    slots=slots,
                )
    return tallies


def _request_buckets(ctx: DemoContext, first: datetime, now: datetime) -> int:
    # From a whole ten minutes on, so that a coarse bucket never overlaps the fine ones.
    fine_from = now - timedelta(minutes=FINE_MINUTES)
    fine_from = fine_from.replace(minute=fine_from.minute - fine_from.minute % 10, second=0)
    fine_from = fine_from.replace(microsecond=0)
    tallies: dict[BucketKey, Tally] = {}
    moment = first
    while moment <= now:
        fine = moment >= fine_from
        step = timedelta(minutes=1) if fine else COARSE
        # The last hour and a half: the trial balance slows down, postings fail more.
        incident = moment >= now - timedelta(minutes=90)
        tallies.update(_tallies(ctx, moment, int(step.total_seconds() // 60), 1.0, incident))
        moment += step
    return request_buckets_write(tallies)


def _task_buckets(ctx: DemoContext, first: datetime, now: datetime) -> int:
    rows: list[TaskBucket] = []
    moment = first
    while moment <= now:
        for func, runs, profile, failing in TASKS:
            n = _count(runs, ctx)
            failed = min(n, int(n * failing + ctx.rnd.random() * failing * 20))
            for outcome, k in ((TaskBucket.Outcome.SUCCESS, n - failed), ("failure", failed)):
                if k:
                    slots = _allot(k, profile)
                    total, top = _seconds(slots)
                    rows.append(
                        TaskBucket(
                            minute=moment,
                            func=func,
                            outcome=outcome,
                            count=k,
                            run_seconds_sum=total,
                            run_seconds_max=top,
                            wait_seconds_sum=k * ctx.rnd.uniform(0.05, 2.0),
                            **{f"h{i:02d}": v for i, v in enumerate(slots)},
                        )
                    )
        moment += TASK_STEP
    TaskBucket.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def _statistic(
    day: date, kind: str, name: str, method: str, count: int, errors: int, slots: list[int]
) -> DailyStatistic:
    total, top = _seconds(slots)
    return DailyStatistic(
        day=day,
        kind=kind,
        name=name,
        method=method,
        count=count,
        errors=errors,
        seconds_sum=total,
        seconds_max=top,
        p50=percentile(slots, 0.50),
        p95=percentile(slots, 0.95),
        p99=percentile(slots, 0.99),
        **{f"h{i:02d}": v for i, v in enumerate(slots)},
    )


def _old_statistics(ctx: DemoContext, until: date) -> int:
    """Daily statistics of the days before the buckets, written directly."""
    rows: list[DailyStatistic] = []
    day = ctx.start
    while day < until:
        progress = (day - ctx.start).days / max(ctx.days, 1)
        noon = datetime.combine(day, time(12), tzinfo=UTC)
        # A day's traffic: the office-hours curve's area, about 7 peak hours on a weekday.
        load = sum(_load(noon.replace(hour=h), progress) for h in range(24))
        # Every few weeks a slower day (a month-end close).
        slow_by = 0.5 if day.day in (1, 2) else 0.1 * ctx.rnd.random()
        for route, method, peak, profile, failing, queries in ROUTES:
            n = _count(peak * load, ctx)
            errors = int(n * failing * ctx.rnd.uniform(0.0, 2.0))
            slots = _allot(n, _slower(profile, slow_by))
            row = _statistic(day, DailyStatistic.Kind.ROUTE, route, method, n, errors, slots)
            row.queries = n * queries
            rows.append(row)
        for func, runs, profile, failing in TASKS:
            n = _count(runs * 96, ctx)
            failed = int(n * failing * ctx.rnd.uniform(0.0, 2.0))
            rows.append(
                _statistic(day, DailyStatistic.Kind.TASK, func, "", n, failed, _allot(n, profile))
            )
        day += timedelta(days=1)
    DailyStatistic.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def _snapshots(ctx: DemoContext) -> int:
    """A snapshot a day at 23:50 (and one now): the database grows with the traffic, the
    volume fills with it and the backups beside it."""
    rows: list[DatabaseSnapshot] = []
    size, other = 180 * 10**6, 35 * 10**9
    day = ctx.start
    moments = []
    while day < ctx.today:
        moments.append(datetime.combine(day, time(23, 50), tzinfo=UTC))
        day += timedelta(days=1)
    moments.append(ctx.now - timedelta(minutes=1))
    for index, taken_at in enumerate(moments):
        progress = index / max(len(moments), 1)
        size += int((1.2 + 2.0 * progress) * 10**6 * ctx.rnd.uniform(0.5, 1.5))
        other += int(110 * 10**6 * ctx.rnd.uniform(0.6, 1.4))
        free = VOLUME_BYTES - size - other
        rows.append(
            DatabaseSnapshot(
                taken_at=taken_at,
                engine=SnapshotEngine.POSTGRESQL,
                database_bytes=size,
                connections_total=ctx.rnd.randint(4, 18),
                cache_hit_ratio=round(ctx.rnd.uniform(0.985, 0.999), 4),
                deadlocks=0,
                disk_free_ratio=round(free / VOLUME_BYTES, 4),
                figures={
                    "rows": {"live": size // 400},
                    "largest_tables": [
                        {
                            "table": t,
                            "total_bytes": int(size * share),
                            "live_rows": int(size * share) // per_row,
                        }
                        for t, share, per_row in TABLES
                    ],
                },
                host={
                    "volumes": [
                        {
                            "roles": ["database", "backups"],
                            "total_bytes": VOLUME_BYTES,
                            "free_bytes": free,
                            "free_ratio": round(free / VOLUME_BYTES, 4),
                        }
                    ]
                },
            )
        )
    DatabaseSnapshot.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def _slow_records(ctx: DemoContext, first: datetime, now: datetime) -> int:
    records = []
    seconds_span = (now - first).total_seconds()
    for index in range(60):
        at = first + timedelta(seconds=ctx.rnd.uniform(0, seconds_span))
        route, method = ctx.rnd.choice([("trial-balance", "GET"), ("entry-post", "POST")])
        took = round(ctx.rnd.uniform(1.0, 6.5), 3)
        sql = ctx.rnd.choice(SLOW_SQL)
        records.append(
            SlowRecord(
                at=at,
                route=route,
                method=method,
                status=200 if index % 9 else 500,
                seconds=took,
                queries=ctx.rnd.randint(8, 40),
                query_seconds=round(took * 0.7, 3),
                request_id=f"demo-{index:04d}",
                slow_request=True,
                slow_queries=[(sql, round(took * ctx.rnd.uniform(0.3, 0.7), 3))],
            )
        )
    slow_records_write(records)
    return len(records)


# --- error groups: real exceptions from these functions, recorded by the error log -----------


class StatementMismatch(ValueError):
    pass


def _match_bank_statement() -> None:
    raise StatementMismatch("Statement line 118 matches no open payment (amount 1,240.00 USD)")


def _render_invoice_pdf() -> None:
    raise KeyError("logo_url")


def _post_fx_revaluation() -> None:
    raise ZeroDivisionError("EUR/USD rate is zero for 2026-03-31")


def _sync_bank_feed() -> None:
    raise TimeoutError("bank feed did not answer in 30 s")


def _caught(raiser: Callable[[], None]) -> BaseException:
    try:
        raiser()
    except (StatementMismatch, KeyError, ZeroDivisionError, TimeoutError) as exc:
        return exc
    raise AssertionError("the demo's raiser did not raise")


def _errors(ctx: DemoContext) -> str:
    """Two resolved groups (weeks old), one regressed today, one new today."""
    operator = ctx.users["operator"]
    now = ctx.now

    def record(raiser: Callable[[], None], route: str) -> ErrorGroup:
        event = error_record(exc=_caught(raiser), source="request", route=route, method="POST")
        if event is None:
            raise RuntimeError("the error log did not record the demo's error")
        return event.group

    groups = []
    for raiser, route, age in (
        (_post_fx_revaluation, "entry-post", 60),
        (_sync_bank_feed, "balances", 25),
    ):
        group = record(raiser, route)
        error_group_resolve(group=group, actor=operator)
        groups.append((group, age))
    regressed = record(_render_invoice_pdf, "admin:index")
    error_group_resolve(group=regressed, actor=operator)
    record(_render_invoice_pdf, "admin:index")  # after its fix: a regression
    groups.append((regressed, 40))
    record(_match_bank_statement, "entry-post")  # new today
    # error_record always records now: move the older groups' sightings back.
    for group, age in groups:
        first = now - timedelta(days=age)
        if group.pk == regressed.pk:
            ErrorGroup.objects.filter(pk=group.pk).update(first_seen=first)
            events = group.events.filter(pk__in=group.events.order_by("pk").values("pk")[:1])
        else:
            ErrorGroup.objects.filter(pk=group.pk).update(
                first_seen=first,
                last_seen=first + timedelta(days=2),
                resolved_at=first + timedelta(days=3),
            )
            events = group.events.all()
        events.update(occurred_at=first)
    return f"{ErrorGroup.objects.filter(status=ErrorStatus.UNRESOLVED).count()} unresolved"


def seed_metrics(ctx: DemoContext) -> str:
    if DailyStatistic.objects.exists() or RequestBucket.objects.exists():
        return "Monitoring: metrics already there, nothing seeded."
    now = ctx.now
    first_bucket_day = ctx.today - timedelta(days=BUCKET_DAYS - 1)
    first = datetime.combine(first_bucket_day, time.min, tzinfo=UTC)
    snapshots = _snapshots(ctx)
    old = _old_statistics(ctx, first_bucket_day)
    buckets = _request_buckets(ctx, first, now)
    tasks = _task_buckets(ctx, first, now)
    slow = _slow_records(ctx, first, now)
    day = ctx.start
    while day < first_bucket_day:
        daily_storage_compute(day)
        day += timedelta(days=1)
    while day < ctx.today:
        daily_stats_compute(day)  # the buckets' days, as the nightly job makes them
        day += timedelta(days=1)
    daily_storage_compute(ctx.today)
    errors = _errors(ctx)
    thresholds_evaluate(now=now)
    return (
        f"Monitoring: {old} old daily statistics, {buckets} request and {tasks} task buckets, "
        f"{snapshots} snapshots, {slow} slow requests, error groups ({errors})."
    )


DEMO = [DemoHistory(name="monitoring.metrics", order=60, seed=seed_metrics)]
