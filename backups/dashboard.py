"""The Backups dashboard (`/admin/dashboards/backups/`) and its Overview tile.

The page: the recovery objectives now, recent backups and drills with their measurements
(paginated), the recovery time and recovery point over the chosen range, and for operators
buttons that queue a backup or a restore drill through the services (backups/services/queue.py,
which write the row and its audit event; a worker does the work). Registered by
backups/admin.py. The reads are backups/selectors.py.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from backups import selectors, services
from backups.models import Backup, BackupStatus, RestoreDrill
from backups.selectors import Objectives
from config import charts, dashboards
from config.errors import DomainError

KEY = "backups"
RANGES = ("week", "month", "year")
BACKUPS_PER_PAGE = 20
DRILLS_PER_PAGE = 10
# "Close" to an objective: past this share of it, the tile asks for attention.
CLOSE = 0.9


def visible(user: Any) -> bool:
    return bool(user.has_perm("backups.view_backup"))


def dashboard_url() -> str:
    return reverse("admin:dashboard_backups")


# --- how recovery stands now (the tile, and the page's first panel) -----------------------


@dataclass(frozen=True)
class Recovery:
    status: dashboards.Status
    summary: str
    rows: list[tuple[str, str]]


def age_text(age: timedelta) -> str:
    seconds = max(age.total_seconds(), 0)
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def recovery_now(
    *,
    now: datetime,
    latest: Backup | None,
    verified: Backup | None,
    drill: RestoreDrill | None,
    objectives: Objectives,
    drills: bool = True,
) -> Recovery:
    """Bad when the newest verified backup is older than the recovery point objective (or there
    is none), or the last finished drill failed or is older than the drill limit; needs
    attention when either is close to its limit, the newest backup failed, or the last restore
    took longer than the recovery time objective. With `drills` false (a viewer who may not see
    the drills) the drills are left out: no rows, no verdict."""
    bad: list[str] = []
    warn: list[str] = []
    rows: list[tuple[str, str]] = []
    rpo, drill_limit, rto = objectives.rpo, objectives.drill_max_age, objectives.rto

    if latest is not None:
        rows.append(
            (
                "Last backup",
                f"#{latest.pk} {latest.get_status_display().lower()}, "
                f"started {age_text(now - latest.started_at)} ago"
                + (f", {filesizeformat(latest.size_bytes)}" if latest.size_bytes else ""),
            )
        )
        if latest.status in (BackupStatus.FAILED, BackupStatus.UNVERIFIED):
            warn.append(f"the last backup (#{latest.pk}) is {latest.get_status_display().lower()}")
    if verified is None or verified.snapshot_at is None:
        bad.append("no verified backup exists")
        rows.append(("Recovery point", f"no verified backup (objective {age_text(rpo)})"))
    else:
        age = now - verified.snapshot_at
        rows.append(
            ("Recovery point", f"#{verified.pk}, {age_text(age)} old (objective {age_text(rpo)})")
        )
        if age > rpo:
            bad.append(
                f"the newest verified backup is {age_text(age)} old, "
                f"over the {age_text(rpo)} recovery point objective"
            )
        elif age > rpo * CLOSE:
            warn.append(
                f"the newest verified backup is {age_text(age)} old, close to the objective"
            )

    if not drills:
        pass
    elif drill is None or drill.finished_at is None:
        bad.append("no restore drill has finished")
        rows.append(("Last drill", "none yet"))
    else:
        age = now - drill.finished_at
        rows.append(
            (
                "Last drill",
                f"#{drill.pk} of backup #{drill.backup_id} {drill.get_status_display().lower()}, "
                f"{age_text(age)} ago (limit {age_text(drill_limit)})",
            )
        )
        if drill.status == RestoreDrill.Status.FAILED:
            step = f" at {drill.failed_step}" if drill.failed_step else ""
            bad.append(f"the last restore drill (#{drill.pk}) failed{step}")
        elif age > drill_limit:
            bad.append(
                f"the last restore drill is {age_text(age)} old (limit {age_text(drill_limit)})"
            )
        elif age > drill_limit * CLOSE:
            warn.append(f"the last restore drill is {age_text(age)} old, close to the limit")
        if drill.restore_seconds is not None:
            took = timedelta(seconds=drill.restore_seconds)
            rows.append(("Recovery time", f"{age_text(took)} (objective {age_text(rto)})"))
            if took > rto:
                warn.append(
                    f"the last restore took {age_text(took)}, over the {age_text(rto)} "
                    "recovery time objective"
                )

    if bad:
        return Recovery("bad", _sentence(bad), rows)
    if warn:
        return Recovery("warn", _sentence(warn), rows)
    if not drills:
        return Recovery("ok", "Backups are within the recovery point objective.", rows)
    return Recovery("ok", "Backups and restore drills are within the recovery objectives.", rows)


def _sentence(parts: list[str]) -> str:
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _recovery(user: Any) -> Recovery:
    """How recovery stands, as `user` may see it: the drills only with their view permission."""
    drills = user.has_perm("backups.view_restoredrill")
    return recovery_now(
        now=timezone.now(),
        latest=selectors.backup_latest(),
        verified=selectors.backup_latest_verified(),
        drill=selectors.drill_latest() if drills else None,
        objectives=selectors.objectives(),
        drills=drills,
    )


def overview_tiles(request: HttpRequest) -> list[dashboards.Tile]:
    """One tile: the last backup, the last drill and their ages against the objectives (three
    queries)."""
    recovery = _recovery(request.user)
    return [
        dashboards.Tile(
            key=KEY,
            title="Backups",
            hint=(
                "an operator starts a backup, then a drill of it, from Backups; if either fails, "
                "its error and docs/runbooks.md (backups/...) say why."
            ),
            status=recovery.status,
            summary=recovery.summary,
            url=dashboard_url(),
            rows=recovery.rows,
        )
    ]


# --- the page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupRow:
    backup: Backup
    seconds: float | None
    checksum: str
    restorable: bool


@dataclass(frozen=True)
class DrillRow:
    drill: RestoreDrill
    rows_checked: int | None


def _backup_row(backup: Backup) -> BackupRow:
    if backup.verified_at is not None and not backup.verification_error:
        checksum = "yes"
    elif backup.verification_error:
        checksum = "failed"
    elif backup.status in (BackupStatus.FAILED, BackupStatus.RUNNING):
        checksum = "-"
    else:
        checksum = "not yet"
    return BackupRow(
        backup=backup,
        seconds=backup.duration_seconds,
        checksum=checksum,
        restorable=backup.status in services.RESTORABLE,
    )


def _drill_row(drill: RestoreDrill) -> DrillRow:
    # The drill records what the restored copy held as results["restored"]["rows"].
    restored = drill.results.get("restored") if isinstance(drill.results, dict) else None
    rows = restored.get("rows") if isinstance(restored, dict) else None
    return DrillRow(drill=drill, rows_checked=rows if isinstance(rows, int) else None)


def _label(at: datetime, step: timedelta) -> str:
    local = timezone.localtime(at)
    return f"{local:%Y-%m-%d}" if step >= timedelta(days=1) else f"{local:%d %b %H:%M}"


def _charts(
    user: Any, since: datetime, step: timedelta, objectives: Objectives
) -> list[charts.Chart]:
    made: list[charts.Chart] = []
    if user.has_perm("backups.view_restoredrill"):
        drills = selectors.drill_points(since=since)
        made.append(
            charts.line_chart(
                title="Recovery time: each drill's restore against the objective",
                x_labels=[f"{_label(d.at, step)} #{d.backup_id}" for d in drills],
                series={
                    "Restore (minutes)": [
                        None if d.restore_seconds is None else round(d.restore_seconds / 60, 2)
                        for d in drills
                    ],
                    "Objective (minutes)": [objectives.rto.total_seconds() / 60] * len(drills),
                },
                y_title="minutes",
            )
        )
    points = selectors.recovery_points(since=since)
    made.append(
        charts.line_chart(
            title="Recovery point: hours without a newer verified backup, against the objective",
            x_labels=[_label(p.at, step) for p in points],
            series={
                "Gap before each verified backup (hours)": [
                    None if p.gap is None else round(p.gap.total_seconds() / 3600, 2)
                    for p in points
                ],
                "Objective (hours)": [objectives.rpo.total_seconds() / 3600] * len(points),
            },
            y_title="hours",
        )
    )
    sizes = selectors.backup_size_points(since=since)
    made.append(
        charts.line_chart(
            title="Backup size as stored",
            x_labels=[_label(s.at, step) for s in sizes],
            series={"Size (MB)": [round(s.size_bytes / 1_000_000, 1) for s in sizes]},
            y_title="MB",
        )
    )
    return made


def _page_link(request: HttpRequest, name: str, number: int) -> str:
    query = request.GET.copy()
    query[name] = str(number)
    return "?" + query.urlencode()


def _pager(request: HttpRequest, page: Page[Any], name: str) -> dict[str, str]:
    return {
        "previous": _page_link(request, name, page.previous_page_number())
        if page.has_previous()
        else "",
        "next": _page_link(request, name, page.next_page_number()) if page.has_next() else "",
    }


def backups_dashboard(request: HttpRequest) -> TemplateResponse:
    if not visible(request.user):
        raise PermissionDenied
    user = request.user
    chosen = dashboards.selected_range(request, default="month", allowed=RANGES)
    objectives = selectors.objectives()
    recovery = _recovery(user)
    backups_page = Paginator(selectors.backups_list(), BACKUPS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    can_see_drills = user.has_perm("backups.view_restoredrill")
    drills_page = (
        Paginator(selectors.drills_list(), DRILLS_PER_PAGE).get_page(request.GET.get("drills"))
        if can_see_drills
        else None
    )
    context = {
        **admin.site.each_context(request),
        **dashboards.nav_context(request, KEY),
        **dashboards.range_context(request, chosen, RANGES),
        "title": "Backups",
        "recovery": recovery,
        "recovery_label": dashboards.STATUS_LABELS[recovery.status],
        "objectives": objectives,
        "backups_page": backups_page,
        "backup_rows": [_backup_row(b) for b in backups_page.object_list],
        "backups_pager": _pager(request, backups_page, "page"),
        "drills_page": drills_page,
        "drill_rows": [_drill_row(d) for d in drills_page.object_list]
        if drills_page is not None
        else [],
        "drills_pager": _pager(request, drills_page, "drills") if drills_page is not None else {},
        "can_see_drills": can_see_drills,
        "charts": _charts(user, timezone.now() - chosen.span, chosen.step, objectives),
        "can_backup": user.has_perm("backups.run_backup"),
        "can_drill": user.has_perm("backups.drill_backup"),
        "here": request.get_full_path(),
    }
    return TemplateResponse(request, "admin/backups/dashboard.html", context)


# --- actions ----------------------------------------------------------------------------


def _back(request: HttpRequest) -> HttpResponseRedirect:
    target = request.POST.get("next", "")
    if target and url_allowed(request, target):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(dashboard_url())


def url_allowed(request: HttpRequest, target: str) -> bool:
    # Only a path on this dashboard: the form posts `next` back to where the operator was.
    return target.startswith(dashboard_url()) and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )


@require_POST
def backup_now(request: HttpRequest) -> HttpResponse:
    """Queue a backup (a RUNNING row and its audit event now; a worker takes and verifies it)."""
    if not request.user.has_perm("backups.run_backup"):
        raise PermissionDenied
    try:
        backup = services.backup_queue(actor=request.user, trigger=Backup.Trigger.ADMIN)
    except DomainError as exc:
        messages.error(request, f"[{exc.code}] {exc.message}")
        return _back(request)
    messages.success(request, f"Backup #{backup.pk} queued: a worker takes and verifies it.")
    return _back(request)


@require_POST
def drill_now(request: HttpRequest) -> HttpResponse:
    """Queue a restore drill of the backup named in `backup`, or of the newest good backup."""
    if not request.user.has_perm("backups.drill_backup"):
        raise PermissionDenied
    raw = request.POST.get("backup", "").strip()
    backup: Backup | None
    if not raw:
        backup = services.newest_good_backup()
        if backup is None:
            messages.error(request, "There is no stored backup to drill: take one first.")
            return _back(request)
    elif (pk := dashboards.posted_id(request, "backup")) is not None:
        backup = get_object_or_404(Backup, pk=pk)
    else:
        messages.error(request, "That is not a backup's number.")
        return _back(request)
    try:
        drill = services.drill_queue(
            backup=backup, actor=request.user, trigger=Backup.Trigger.ADMIN
        )
    except DomainError as exc:
        messages.error(request, f"[{exc.code}] {exc.message}")
        return _back(request)
    messages.success(
        request,
        f"Restore drill #{drill.pk} of backup #{backup.pk} queued: a worker restores it into a "
        "scratch database and checks it.",
    )
    return _back(request)


def urls(site: admin.AdminSite) -> list[URLPattern | URLResolver]:
    return [
        path("", site.admin_view(backups_dashboard), name="dashboard_backups"),
        path("backup/", site.admin_view(backup_now), name="dashboard_backups_backup"),
        path("drill/", site.admin_view(drill_now), name="dashboard_backups_drill"),
    ]


DASHBOARD = dashboards.Dashboard(
    key=KEY,
    title="Backups",
    order=70,
    visible=visible,
    urls=urls,
    tiles=overview_tiles,
)
