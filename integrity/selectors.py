"""Reads of the integrity app that more than one caller needs (API, admin, commands, services
and the apps above)."""

from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal

from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber, TruncDay, TruncHour, TruncWeek
from django.utils import timezone

from config import registry
from integrity.models import (
    CheckResult,
    CheckRun,
    CheckRunStatus,
    DeadLetter,
    Finding,
    FindingExplanation,
)


def deadletter_list() -> QuerySet[DeadLetter]:
    return DeadLetter.objects.select_related("resolved_by", "discarded_by").prefetch_related(
        "events__actor"
    )


def checkrun_list() -> QuerySet[CheckRun]:
    return CheckRun.objects.select_related("triggered_by").prefetch_related("results")


def finding_list() -> QuerySet[Finding]:
    return Finding.objects.select_related(
        "run", "explanation", "explanation__explained_by", "explanation__withdrawn_by"
    ).order_by("-run_id", "check_name", "id")


def explanations_in_force(*, check_name: str, fingerprints: list[str]) -> dict[str, int]:
    """{fingerprint: explanation id} for those of `fingerprints` explained and not withdrawn:
    what a run, a new explanation and the real-time re-check all judge by."""
    return dict(
        FindingExplanation.objects.filter(
            check_name=check_name, fingerprint__in=fingerprints, withdrawn_at__isnull=True
        ).values_list("fingerprint", "pk")
    )


def check_status_list(*, trend: int = 0) -> list[dict[str, Any]]:
    """Every registered check with its latest result, and with `trend` its latest results
    (oldest first): one indexed lookup per check (check_name, -started_at), a few dozen rows
    however long the history."""
    checks = registry.all_checks()
    fields = ("status", "failing_count", "started_at", "duration_ms", "run_id")
    recent = {
        name: list(
            CheckResult.objects.filter(check_name=name)
            .order_by("-started_at", "-pk")
            .values(*fields)[: max(trend, 1)]
        )
        for name in checks
    }
    return [
        {
            "name": c.name,
            "tag": c.tag,
            "severity": c.severity,
            "description": c.description,
            "windowed": c.windowed,
            "warn_at": c.thresholds[0],
            "error_at": c.thresholds[1],
            "alert": "/".join(c.alert),
            "last": recent[c.name][0] if recent[c.name] else None,
            **({"trend": recent[c.name][::-1]} if trend else {}),
        }
        for c in checks.values()
    ]


def check_trend(*, check_name: str, limit: int = 30) -> list[CheckResult]:
    """The latest results of one check, newest first."""
    return list(
        CheckResult.objects.filter(check_name=check_name)
        .select_related("run")
        .order_by("-started_at", "-pk")[:limit]
    )


# --- the Integrity dashboard (integrity/admin/dashboard.py) ----------------------------------

Unit = Literal["hour", "day", "week"]
_TRUNC: dict[str, type[TruncHour | TruncDay | TruncWeek]] = {
    "hour": TruncHour,
    "day": TruncDay,
    "week": TruncWeek,
}
# The outcomes a chart or a trend strip shows, worst last; abandoned runs count as errors.
OUTCOMES = ("pass", "warn", "fail", "error")
_WORST = {"pass": 0, "warn": 1, "fail": 2, "error": 3}


def bucket_starts(*, since: datetime, until: datetime, unit: Unit) -> list[datetime]:
    """The starts of the `unit` buckets from the one holding `since` to the one holding
    `until`, in the current time zone, as the database's Trunc* functions give them."""
    local = timezone.localtime(since)
    named: dict[datetime, datetime] = {}  # by the instant each start stands for
    if unit == "hour":
        # Each hour is named as the database's TruncHour names it (_hour_holding), found by
        # walking from `since` to `until` in quarter hours (every zone's offset is a multiple
        # of one): an hour added to a local time is added to its wall clock, which gives an
        # hour twice where the clocks go forward, and the hour after a half-hour change (Lord
        # Howe) is not a whole hour from the one before. The hour that comes twice where the
        # clocks go back is one bucket, as TruncHour makes it.
        at = since
        while True:
            start = _hour_holding(at)
            named.setdefault(start.astimezone(UTC), start)
            if at >= until:
                return list(named.values())
            at = min(at + timedelta(minutes=15), until)
    # Days and weeks step on the calendar (a day is not always 24 hours where clocks change);
    # a midnight the clocks skip is named as the database names it, and a day that never
    # happened (Apia, 30 December 2011) is not a bucket.
    day = local.date()
    if unit == "week":
        day -= timedelta(days=day.weekday())
    zone = timezone.get_current_timezone()
    while (start := _bucket_key(datetime.combine(day, time(), tzinfo=zone))) <= until:
        named.setdefault(start.astimezone(UTC), start)
        day += timedelta(days=7 if unit == "week" else 1)
    return list(named.values())


def _hour_holding(value: datetime) -> datetime:
    """The hour bucket holding `value` as TruncHour gives it: the local wall time cut to the
    hour and read back in the zone as its first occurrence (Django's make_aware, fold 0)."""
    return _bucket_key(timezone.localtime(value).replace(minute=0, second=0, microsecond=0, fold=0))


def _bucket_key(value: datetime) -> datetime:
    """A bucket's start in the current zone, named by the instant it stands for. Through UTC:
    astimezone to the zone a value already has changes nothing, so a wall time the clocks
    skipped (Chatham's 03:00, Santiago's midnight) would keep its name while the instant it
    stands for is the next hour's, and the two would be different keys for one bucket."""
    return timezone.localtime(value.astimezone(UTC))


def latest_results() -> QuerySet[CheckResult]:
    """The latest result of each check that has run: one query, a window ranking each check's
    results by (started_at, pk), newest first."""
    return CheckResult.objects.annotate(
        rank=Window(
            RowNumber(),
            partition_by=[F("check_name")],
            order_by=[F("started_at").desc(), F("pk").desc()],
        )
    ).filter(rank=1)


def check_history(*, since: datetime, until: datetime, unit: Unit) -> list[dict[str, Any]]:
    """A row per registered check: its latest result and its outcomes per `unit` since `since`
    (each bucket's worst outcome, or None where it did not run), in two queries however many
    checks and results there are."""
    checks = registry.all_checks()
    latest = {
        r["check_name"]: r
        for r in latest_results().values(
            "check_name", "status", "started_at", "run_id", "failing_count", "explained_count"
        )
    }
    starts = bucket_starts(since=since, until=until, unit=unit)
    index = {start: i for i, start in enumerate(starts)}
    per_check: dict[str, list[str | None]] = {name: [None] * len(starts) for name in checks}
    counts: dict[str, dict[str, int]] = {name: dict.fromkeys(OUTCOMES, 0) for name in checks}
    rows = (
        CheckResult.objects.filter(started_at__gte=since, check_name__in=list(checks))
        .annotate(bucket=_TRUNC[unit]("started_at"))
        .values("check_name", "bucket", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        name, status = row["check_name"], row["status"]
        counts[name][status] = counts[name].get(status, 0) + row["n"]
        i = index.get(_bucket_key(row["bucket"]))
        if i is None:
            continue
        seen = per_check[name][i]
        if seen is None or _WORST[status] > _WORST[seen]:
            per_check[name][i] = status
    return [
        {
            "name": c.name,
            "tag": c.tag,
            "severity": c.severity,
            "description": c.description,
            "last": latest.get(c.name),
            "counts": counts[c.name],
            "strip": [
                {"start": start, "status": status}
                for start, status in zip(starts, per_check[c.name], strict=True)
            ],
        }
        for c in checks.values()
    ]


def checkrun_outcomes(
    *, since: datetime, until: datetime, unit: Unit
) -> tuple[list[datetime], dict[str, list[int]]]:
    """Check runs per `unit` since `since`, by how they ended: (bucket starts, {outcome:
    counts}); queued and running runs are left out, abandoned ones count as errors."""
    starts = bucket_starts(since=since, until=until, unit=unit)
    index = {start: i for i, start in enumerate(starts)}
    series = {outcome: [0] * len(starts) for outcome in OUTCOMES}
    rows = (
        CheckRun.objects.filter(created_at__gte=since)
        .exclude(status__in=(CheckRunStatus.QUEUED, CheckRunStatus.RUNNING))
        .annotate(bucket=_TRUNC[unit]("created_at"))
        .values("bucket", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        i = index.get(_bucket_key(row["bucket"]))
        outcome = row["status"] if row["status"] in series else "error"
        if i is not None:
            series[outcome][i] += row["n"]
    return starts, series


def findings_opened(
    *, since: datetime, until: datetime, unit: Unit
) -> tuple[list[datetime], dict[str, list[int]]]:
    """New findings per `unit` since `since`, by severity: a finding is new when no earlier run
    found the same thing (same check and fingerprint); a problem found again by every run is
    counted once, where it first appeared (within the runs still kept)."""
    starts = bucket_starts(since=since, until=until, unit=unit)
    index = {start: i for i, start in enumerate(starts)}
    earlier = Finding.objects.filter(
        check_name=OuterRef("check_name"),
        fingerprint=OuterRef("fingerprint"),
        run__created_at__lt=OuterRef("run__created_at"),
    )
    rows = (
        Finding.objects.filter(run__created_at__gte=since)
        .filter(~Exists(earlier))
        .annotate(bucket=_TRUNC[unit]("run__created_at"))
        .values("bucket", "severity")
        .annotate(n=Count("id"))
        .order_by()
    )
    series: dict[str, list[int]] = {}
    for row in rows:
        i = index.get(_bucket_key(row["bucket"]))
        if i is not None:
            series.setdefault(row["severity"], [0] * len(starts))[i] += row["n"]
    order = ("critical", "error", "warning", "info")
    ranked = sorted(series, key=lambda s: (order.index(s) if s in order else len(order), s))
    return starts, {severity: series[severity] for severity in ranked}


def open_finding_list() -> QuerySet[Finding]:
    """What the checks find now: the findings of each check's latest result, explained or not,
    worst first, with their explanations."""
    return (
        Finding.objects.filter(result_id__in=latest_results().values("pk"))
        .select_related("run", "explanation", "explanation__explained_by")
        .annotate(
            rank=Case(
                When(severity="critical", then=Value(0)),
                When(severity="error", then=Value(1)),
                When(severity="warning", then=Value(2)),
                default=Value(3),
            )
        )
        .order_by(F("explanation_id").asc(nulls_first=True), "rank", "check_name", "-id")
    )


def open_findings_by_severity() -> dict[str, dict[str, int]]:
    """{severity: {"open": n, "explained": m}} over the findings of each check's latest result."""
    counts: dict[str, dict[str, int]] = {}
    rows = (
        Finding.objects.filter(result_id__in=latest_results().values("pk"))
        .values("severity")
        .annotate(
            open=Count("id", filter=Q(explanation__isnull=True)),
            explained=Count("id", filter=Q(explanation__isnull=False)),
        )
        .order_by()
    )
    for row in rows:
        counts[row["severity"]] = {"open": row["open"], "explained": row["explained"]}
    return counts


def last_results_per_tag() -> list[dict[str, Any]]:
    """Per tag: when its checks last ran and the worst of their latest outcomes, with the
    number of its checks that have never run."""
    checks = registry.all_checks()
    latest = {
        r["check_name"]: r for r in latest_results().values("check_name", "status", "started_at")
    }
    tags: dict[str, dict[str, Any]] = {}
    for check in checks.values():
        entry = tags.setdefault(
            check.tag, {"tag": check.tag, "status": None, "last_run": None, "never_run": 0}
        )
        result = latest.get(check.name)
        if result is None:
            entry["never_run"] += 1
            continue
        if entry["status"] is None or _WORST[result["status"]] > _WORST[entry["status"]]:
            entry["status"] = result["status"]
        if entry["last_run"] is None or result["started_at"] > entry["last_run"]:
            entry["last_run"] = result["started_at"]
    return sorted(tags.values(), key=lambda t: str(t["tag"]))


def deadletter_queue_stats() -> dict[str, Any]:
    """The dead-letter queue in one query: letters waiting (pending or being retried), failed
    ones (waiting for an operator), and when the oldest of those was kept."""
    waiting = Q(status__in=(DeadLetter.Status.PENDING, DeadLetter.Status.RETRYING))
    failed = Q(status=DeadLetter.Status.FAILED)
    stats = DeadLetter.objects.filter(waiting | failed).aggregate(
        waiting=Count("id", filter=waiting),
        failed=Count("id", filter=failed),
        oldest=Min("created_at"),
    )
    return {"waiting": stats["waiting"], "failed": stats["failed"], "oldest": stats["oldest"]}


def deadletter_open_list() -> QuerySet[DeadLetter]:
    """Letters that still need something (waiting or failed), oldest first."""
    return DeadLetter.objects.filter(
        status__in=(DeadLetter.Status.PENDING, DeadLetter.Status.RETRYING, DeadLetter.Status.FAILED)
    ).order_by("created_at", "pk")
