"""The Integrity dashboard (`/admin/dashboards/integrity/`) and its Overview tiles.

The page: the components' health, each registered check's history over the selected range
(its last outcome and a strip of its outcomes per hour, day or week), check runs per period by
outcome, the findings the checks report now with their explanations, "Run checks now", and the
dead-letter queue with its retry buttons. Each section and button is shown only to the roles
whose permission it needs; the actions go through integrity.services (which write the audit
events). Reads are in integrity.selectors; the components' health in integrity.health.
"""

from datetime import datetime
from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from config import dashboards, registry
from config.charts import Chart, bar_chart
from config.errors import DomainError
from integrity import selectors, services
from integrity.health import Component, component_health, worst_status
from integrity.models import CheckRun, DeadLetter

KEY = "integrity"
# Check runs are daily and hourly: an hour's range shows nothing a day's does not.
RANGE_KEYS = ("day", "week", "month", "year")
# The bucket each range's charts and trend strips use (a year of days would be 365 bars).
UNITS: dict[str, selectors.Unit] = {"day": "hour", "week": "day", "month": "day", "year": "week"}
FINDINGS_PER_PAGE = 25
LETTERS_SHOWN = 10
STATUS_WORDS = {"pass": "Pass", "warn": "Warn", "fail": "Fail", "error": "Error"}


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _visible(user: Any) -> bool:
    return bool(user.has_perm("integrity.view_checkrun"))


def _label(start: datetime, unit: str) -> str:
    local = timezone.localtime(start)
    if unit == "hour":
        return local.strftime("%H:%M")
    if unit == "week":
        return "w/c " + local.strftime("%Y-%m-%d")
    return local.strftime("%Y-%m-%d")


def _age(since: datetime | None) -> str:
    if since is None:
        return "-"
    seconds = (timezone.now() - since).total_seconds()
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _back(request: HttpRequest) -> HttpResponseRedirect:
    """To the page the form was on (this site only), else the dashboard."""
    return dashboards.redirect_back(request, reverse("admin:dashboard_integrity"))


# --- the page --------------------------------------------------------------------------------


def _runs_chart(since: datetime, until: datetime, unit: selectors.Unit) -> Chart:
    starts, series = selectors.checkrun_outcomes(since=since, until=until, unit=unit)
    return bar_chart(
        title=f"Check runs per {unit} by outcome",
        x_labels=[_label(s, unit) for s in starts],
        series={STATUS_WORDS[o]: values for o, values in series.items()},
        y_title="runs",
        stacked=True,
    )


def _findings_chart(since: datetime, until: datetime, unit: selectors.Unit) -> Chart:
    starts, series = selectors.findings_opened(since=since, until=until, unit=unit)
    return bar_chart(
        title=f"New findings per {unit} by severity",
        x_labels=[_label(s, unit) for s in starts],
        series=dict(series.items()) or {"findings": [0] * len(starts)},
        y_title="findings",
        stacked=True,
    )


def _strip_text(check: dict[str, Any], unit: str) -> str:
    """The trend strip in words (its text alternative)."""
    counts = ", ".join(f"{n} {o}" for o, n in check["counts"].items() if n)
    missed = sum(1 for cell in check["strip"] if cell["status"] is None)
    text = f"{check['name']}: {counts or 'no runs'} in the range"
    return text + (f"; no run in {missed} {unit}(s)" if missed else "")


def integrity_dashboard(request: HttpRequest) -> HttpResponse:
    if not DASHBOARD.visible(request.user):
        raise PermissionDenied
    user = request.user
    chosen = dashboards.selected_range(request, default="month", allowed=RANGE_KEYS)
    unit = UNITS[chosen.key]
    now = timezone.now()
    since = now - chosen.span
    checks = selectors.check_history(since=since, until=now, unit=unit)
    for check in checks:
        check["strip_text"] = _strip_text(check, unit)
        for cell in check["strip"]:
            cell["label"] = _label(cell["start"], unit)
    health = component_health()
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        **dashboards.nav_context(request, KEY),
        **dashboards.range_context(request, chosen, RANGE_KEYS),
        "title": "Integrity",
        "unit": unit,
        "health": health,
        "health_status": worst_status(health),
        "checks": checks,
        "runs_chart": _runs_chart(since, now, unit),
        "can_run": user.has_perm("integrity.run_checks"),
        "check_tags": registry.tags(),
        "here": request.get_full_path(),
    }
    if user.has_perm("integrity.view_finding"):
        page = Paginator(selectors.open_finding_list(), FINDINGS_PER_PAGE).get_page(
            request.GET.get("page")
        )
        context |= {
            "show_findings": True,
            "findings": page,
            "findings_chart": _findings_chart(since, now, unit),
            "can_explain": user.has_perm("integrity.explain_finding"),
        }
    if user.has_perm("integrity.view_deadletter"):
        stats = selectors.deadletter_queue_stats()
        context |= {
            "show_letters": True,
            "letters": list(selectors.deadletter_open_list()[:LETTERS_SHOWN]),
            "letter_stats": stats,
            "oldest_age": _age(stats["oldest"]),
            "can_retry": user.has_perm("integrity.retry_deadletter"),
        }
    return TemplateResponse(request, "admin/integrity/dashboard.html", context)


# --- actions ---------------------------------------------------------------------------------


@require_POST
def run_checks(request: HttpRequest) -> HttpResponse:
    """Runs the chosen tag's checks (every check with no tag) through the check-run service,
    in this request, and says how the run ended with a link to it."""
    if not request.user.has_perm("integrity.run_checks"):
        raise PermissionDenied
    tag = request.POST.get("tag", "")
    if tag and tag not in registry.tags():
        messages.error(request, "Choose one of the listed tags (or all checks).")
        return _back(request)
    try:
        run = services.checks_run(
            trigger=CheckRun.Trigger.ADMIN, actor=_user(request), tags=[tag] if tag else []
        )
    except DomainError as exc:
        messages.error(request, f"[{exc.code}] {exc.message}")
        return _back(request)
    level = {"pass": messages.SUCCESS, "warn": messages.WARNING}.get(run.status, messages.ERROR)
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(run.summary.items()))
    url = reverse("admin:integrity_checkrun_change", args=[run.pk])
    messages.add_message(
        request,
        level,
        format_html(
            'Check run <a href="{}">#{}</a> ({}): {} ({}) in {} ms.',
            url,
            run.pk,
            tag or "all checks",
            run.status,
            counts or "no checks",
            run.duration_ms,
        ),
    )
    return _back(request)


@require_POST
def retry_letter(request: HttpRequest) -> HttpResponse:
    """Retries one dead letter now through the dead-letter service (its original key, so the
    operation can never run twice)."""
    if not request.user.has_perm("integrity.retry_deadletter"):
        raise PermissionDenied
    pk = dashboards.posted_id(request, "letter")
    if pk is None:
        messages.error(request, "Choose a dead letter to retry.")
        return _back(request)
    letter = DeadLetter.objects.filter(pk=pk).first()
    if letter is None:
        raise Http404("No such dead letter.")
    try:
        result = services.deadletter_retry(dead_letter=letter, actor=_user(request))
    except DomainError as exc:
        messages.error(request, f"Dead letter #{letter.pk}: [{exc.code}] {exc.message}")
        return _back(request)
    url = reverse("admin:integrity_deadletter_change", args=[letter.pk])
    message = format_html(
        'Dead letter <a href="{}">#{}</a> ({}): {}.',
        url,
        letter.pk,
        letter.operation,
        result.status,
    )
    if result.status == DeadLetter.Status.RESOLVED:
        messages.success(request, message)
    else:
        messages.warning(request, message)
    return _back(request)


# --- Overview tiles --------------------------------------------------------------------------


def _health_tile(components: list[Component], url: str) -> dashboards.Tile:
    status = worst_status(components)
    troubled = [c for c in components if c.status != "ok"]
    summary = (
        "; ".join(f"{c.name}: {c.detail}" for c in troubled)
        if troubled
        else "Database, worker and scheduler, email and backup storage are all working."
    )
    words = {"ok": "OK", "warn": "Needs attention", "bad": "Down"}
    return dashboards.Tile(
        key="integrity-health",
        title="System health",
        hint=(
            "open Integrity's health panel for the failing component; /health/ready says the same"
            " (docs/health.md, docs/runbooks.md)."
        ),
        status=status,
        summary=summary,
        url=url,
        rows=[(c.name, f"{words[c.status]}: {c.detail}") for c in components],
    )


def _checks_tile(url: str, findings: bool) -> dashboards.Tile:
    """The checks' last outcomes per tag; the open findings too when `findings` (the viewer may
    see them: the page shows them only with integrity.view_finding)."""
    tags = selectors.last_results_per_tag()
    severities = selectors.open_findings_by_severity() if findings else {}
    ran = [t for t in tags if t["status"] is not None]
    rows = [
        (
            f"Checks: {t['tag']}",
            f"{STATUS_WORDS[t['status']]}, "
            f"{timezone.localtime(t['last_run']):%Y-%m-%d %H:%M}"
            + (f" ({t['never_run']} never run)" if t["never_run"] else "")
            if t["status"]
            else "never run",
        )
        for t in tags
    ]
    rows += [
        (f"Open findings: {severity}", f"{c['open']} open, {c['explained']} explained")
        for severity, c in severities.items()
    ]
    failing = [t["tag"] for t in ran if t["status"] in ("fail", "error")]
    warning = [t["tag"] for t in ran if t["status"] == "warn"]
    open_total = sum(c["open"] for c in severities.values())
    found = f"; {open_total} open finding(s)" if findings else ""
    status: dashboards.Status
    if not ran:
        status, summary = "none", "No check has run yet."
    elif failing:
        status = "bad"
        summary = f"Failing checks in {', '.join(failing)}{found}."
    elif warning or open_total:
        status = "warn"
        summary = f"Warnings in {', '.join(warning) or 'none'}{found}."
    else:
        status, summary = "ok", "Every check passed its last run."
    return dashboards.Tile(
        key="integrity-checks",
        title="Checks and findings",
        hint=(
            'open the failing check\'s findings on Integrity, fix or explain them, then "Run now".'
        ),
        status=status,
        summary=summary,
        url=url,
        rows=rows,
    )


def _letters_tile(url: str) -> dashboards.Tile:
    stats = selectors.deadletter_queue_stats()
    waiting, failed = stats["waiting"], stats["failed"]
    if waiting or failed:
        status: dashboards.Status = "bad"
        summary = (
            f"{waiting} waiting and {failed} failed dead letter(s); "
            f"the oldest was kept {_age(stats['oldest'])} ago."
        )
    else:
        status, summary = "ok", "No operation or task is waiting in the dead-letter queue."
    return dashboards.Tile(
        key="integrity-deadletters",
        title="Dead-letter queue",
        hint=(
            "an operator reads the oldest letter's error on Integrity, fixes its cause, then "
            "retries it (or discards it in the dead-letter admin, with a reason)."
        ),
        status=status,
        summary=summary,
        url=url,
        rows=[
            ("Waiting", str(waiting)),
            ("Failed (need an operator)", str(failed)),
            ("Oldest", _age(stats["oldest"])),
        ],
    )


def overview_tiles(request: HttpRequest) -> list[dashboards.Tile]:
    url = reverse("admin:dashboard_integrity")
    findings = request.user.has_perm("integrity.view_finding")
    tiles = [_health_tile(component_health(), url), _checks_tile(url, findings)]
    if request.user.has_perm("integrity.view_deadletter"):
        tiles.append(_letters_tile(url))
    return tiles


def _urls(site: admin.AdminSite) -> list[URLPattern | URLResolver]:
    return [
        path("", site.admin_view(integrity_dashboard), name="dashboard_integrity"),
        path("run/", site.admin_view(run_checks), name="dashboard_integrity_run"),
        path("retry/", site.admin_view(retry_letter), name="dashboard_integrity_retry"),
    ]


DASHBOARD = dashboards.register(
    dashboards.Dashboard(
        key=KEY, title="Integrity", order=30, visible=_visible, urls=_urls, tiles=overview_tiles
    )
)
