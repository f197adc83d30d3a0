"""Reads of the integrity app that more than one caller needs (API, admin, commands, services
and the apps above)."""

from typing import Any

from django.db.models import QuerySet

from config import registry
from integrity.models import CheckResult, CheckRun, DeadLetter, Finding, FindingExplanation


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
