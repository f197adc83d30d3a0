"""The Audit dashboard (admin:dashboard_audit): search the trail, follow one object's timeline,
the chain's status with its verifications and checkpoints, and, for auditors, verify and export.

Registered on the console by audit/admin.py. The page reads through audit/selectors.py; its
two actions go through the existing services (`chain_verify_or_queue`, audit/export.py), which
record their own audit events. Everything an event holds is hostile input (user agents, object
names, changed values): the templates escape it, nothing here marks it safe.
"""

import datetime as dt
import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.http import require_POST, require_safe

from audit import selectors, services
from audit.canonical import format_time
from audit.export import export_range, export_zip_stream
from audit.forms import EventSearchForm, ExportForm, TimelineForm
from audit.models import Checkpoint, Verification, VerificationStatus
from audit.services import actor_repr, checkpoint_signature_problem
from config import dashboards
from config.charts import Chart, bar_chart, line_chart
from config.errors import DomainError

KEY = "audit"
VIEW = "audit.view_auditevent"
VERIFY = "audit.verify_auditevent"
EXPORT = "audit.export_auditevent"
RANGES = ("week", "month", "year")
SEARCH_LIMIT = 1000  # matches a search can page through; narrow the search for older ones
PAGE_SIZE = 25
TIMELINE_PAGE_SIZE = 50
CHECKPOINTS_SHOWN = 5
ACTIONS_CHARTED = 12
# The chain's state (selectors.ChainOverview.state) as a status colour and its word.
STATE_STATUS: dict[str, dashboards.Status] = {
    "broken": "bad",
    "stale": "warn",
    "ok": "ok",
    "empty": "none",
}
STATE_LABEL = {
    "broken": "Broken",
    "stale": "Not verified recently",
    "ok": "Intact",
    "empty": "No events yet",
}


def _visible(user: Any) -> bool:
    return bool(user.has_perm(VIEW))


def _sees_chain(user: Any) -> bool:
    """The chain's state is its verifications and checkpoints: their readers only."""
    return bool(user.has_perm("audit.view_verification") and user.has_perm("audit.view_checkpoint"))


def _context(request: HttpRequest, title: str) -> dict[str, Any]:
    return {
        **admin.site.each_context(request),
        **dashboards.nav_context(request, KEY),
        "title": title,
    }


# The page -------------------------------------------------------------------------------------


@require_safe
def audit_dashboard(request: HttpRequest) -> HttpResponse:
    if not _visible(request.user):
        raise PermissionDenied
    chosen = dashboards.selected_range(request, default="month", allowed=RANGES)
    user = request.user
    context = {
        **_context(request, "Audit"),
        **dashboards.range_context(request, chosen, allowed=RANGES),
        **_search(request),
        **_charts(chosen),
        "can_verify": user.has_perm(VERIFY),
        "can_export": user.has_perm(EXPORT),
        # Its own ids: the search form above has since and until fields too.
        "export_form": ExportForm(auto_id="id_export_%s"),
    }
    if _sees_chain(user):
        context["chain"] = _chain(selectors.audit_chain_overview(checkpoints=CHECKPOINTS_SHOWN))
    return TemplateResponse(request, "admin/audit/dashboard.html", context)


def _search(request: HttpRequest) -> dict[str, Any]:
    """The search form and, when it is valid, a page of its matches, newest first."""
    form = EventSearchForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return {"search_form": form, "results": None}
    data = form.cleaned_data if form.is_bound else {}
    events = selectors.audit_event_search(
        user=request.user,
        actor=data.get("actor", ""),
        action=data.get("action", ""),
        object_type=data.get("object_type", ""),
        object_id=data.get("object_id", ""),
        since=data.get("since"),
        until=data.get("until"),
    )
    page = Paginator(events[:SEARCH_LIMIT], PAGE_SIZE).get_page(request.GET.get("page"))
    return {
        "search_form": form,
        "results": page,
        "search_limit": SEARCH_LIMIT,
        "at_limit": page.paginator.count >= SEARCH_LIMIT,
    }


def _days(chosen: dashboards.Range) -> tuple[dt.datetime, dt.datetime, list[dt.date]]:
    now = timezone.now()
    first = (now - chosen.span).astimezone(dt.UTC).date() + dt.timedelta(days=1)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=dt.UTC)
    days = [first + dt.timedelta(days=i) for i in range((now.date() - first).days + 1)]
    return start, now, days


def _charts(chosen: dashboards.Range) -> dict[str, Chart]:
    since, until, days = _days(chosen)
    per_day = selectors.audit_events_per_day(since=since, until=until)
    by_action = selectors.audit_events_by_action(since=since, until=until, limit=ACTIONS_CHARTED)
    return {
        "per_day_chart": line_chart(
            title=f"Events per day (UTC), {chosen.label.lower()}",
            x_labels=[f"{d:%Y-%m-%d}" for d in days],
            series={"Events": [per_day.get(d, 0) for d in days]},
            y_title="events",
        ),
        "by_action_chart": bar_chart(
            title=f"Events by action, {chosen.label.lower()} (the {ACTIONS_CHARTED} most recorded)",
            x_labels=[action for action, _ in by_action],
            series={"Events": [count for _, count in by_action]},
            y_title="events",
            horizontal=True,
            height=max(240, 28 * len(by_action) + 80),
        ),
    }


def _signature(checkpoint: Checkpoint) -> str:
    problem = checkpoint_signature_problem(
        sequence=checkpoint.sequence,
        hash=checkpoint.hash,
        created_at=format_time(checkpoint.created_at),
        kid=checkpoint.key_id,
        signature=checkpoint.signature,
    )
    return {
        None: "signed, signature verifies",
        "checkpoint.unknown_key": "signed with a key we do not hold",
        "checkpoint.bad_signature": "signature does not verify",
    }.get(problem, problem or "")


def _chain(overview: selectors.ChainOverview) -> dict[str, Any]:
    return {
        "overview": overview,
        "state": overview.state,
        "status": STATE_STATUS[overview.state],
        "label": STATE_LABEL[overview.state],
        "verification": overview.last_verification,
        "verified_to": overview.verified_to,
        "unverified": overview.unverified,
        "checkpoints": [
            {"checkpoint": c, "signature": _signature(c), "witnessed_at": c.witnessed_at}  # type: ignore[attr-defined]  # annotated by the selector
            for c in overview.checkpoints
        ],
        "max_age_hours": overview.max_age / dt.timedelta(hours=1),
    }


# An object's timeline -------------------------------------------------------------------------


def change_rows(changes: Any) -> list[tuple[str, str, str]]:
    """{field: [before, after]} as (field, before, after) text; anything else as one row."""
    if not changes:
        return []
    if not isinstance(changes, dict):
        return [("", "", _text(changes))]
    rows = []
    for field, values in sorted(changes.items()):
        before, after = values if isinstance(values, list) and len(values) == 2 else (None, values)
        rows.append((str(field), _text(before), _text(after)))
    return rows


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


@require_safe
def audit_timeline(request: HttpRequest) -> HttpResponse:
    """Every event about one object, oldest first, with its actor and what changed."""
    if not _visible(request.user):
        raise PermissionDenied
    form = TimelineForm(request.GET or None)
    context = {
        **_context(request, "Audit: an object's timeline"),
        "timeline_form": form,
        "timeline": None,
    }
    if form.is_bound and form.is_valid():
        events = selectors.audit_object_timeline(**form.cleaned_data)
        page = Paginator(events, TIMELINE_PAGE_SIZE).get_page(request.GET.get("page"))
        context["timeline"] = page
        context["rows"] = [(e, change_rows(e.changes)) for e in page.object_list]
    return TemplateResponse(request, "admin/audit/timeline.html", context)


# The actions ----------------------------------------------------------------------------------


def _back(request: HttpRequest) -> HttpResponseRedirect:
    return dashboards.redirect_back(request, reverse("admin:dashboard_audit"))


@require_POST
def audit_verify(request: HttpRequest) -> HttpResponse:
    """Verify the whole chain now, or queue it when it is long (AUDIT_VERIFY_SYNC_LIMIT)."""
    if not request.user.has_perm(VERIFY):
        raise PermissionDenied
    try:
        result = services.chain_verify_or_queue(
            triggered_by=f"dashboard: {actor_repr(request.user)}"
        )
    except DomainError as exc:
        messages.error(request, f"Not verified: {exc}")
        return _back(request)
    if not isinstance(result, Verification):
        messages.info(
            request,
            "The chain is long: its verification was queued for a worker; the result "
            "will show here when it is done.",
        )
    elif result.status == VerificationStatus.OK:
        messages.success(
            request,
            f"Chain verified: {result.events_checked} events and "
            f"{result.checkpoints_checked} checkpoints are intact.",
        )
    else:
        where = f" at event #{result.first_bad_id}" if result.first_bad_id else ""
        messages.error(
            request,
            f"{result.get_status_display()}{where}: {len(result.problems)} problem(s); "
            f"see verification #{result.pk}.",
        )
    return _back(request)


@require_POST
def audit_export(request: HttpRequest) -> HttpResponseBase:
    """The events of a time window as a zip of the export file and its manifest, as the API
    streams it (audit/export.py records the export before the first byte goes out)."""
    if not request.user.has_perm(EXPORT):
        raise PermissionDenied
    form = ExportForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(
            " ".join(str(e) for e in errors) if name == "__all__" else f"{name}: {errors[0]}"
            for name, errors in form.errors.items()
        )
        messages.error(request, f"Nothing exported: {problems}")
        return _back(request)
    fmt = form.cleaned_data["format"]
    r = export_range(since=form.cleaned_data["since"], until=form.cleaned_data["until"])
    if not r.count:
        messages.warning(request, "Nothing exported: no events in that window.")
        return _back(request)
    response = StreamingHttpResponse(
        export_zip_stream(fmt=fmt, r=r, actor=request.user, via="dashboard"),
        content_type="application/zip",
    )
    name = f"audit-{r.from_id}-{r.to_id}-{fmt}.zip"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


# The Overview's tile --------------------------------------------------------------------------


def _ago(moment: dt.datetime | None) -> str:
    return f"{timesince(moment)} ago" if moment else "never"


def overview_tiles(request: HttpRequest) -> list[dashboards.Tile]:
    """The chain's status: bad when the last full verification found it broken, warn when no
    full verification passed within AUDIT_VERIFY_MAX_AGE_HOURS (audit.verification_recent).
    Only for a user who may see the page's chain section (verifications and checkpoints)."""
    if not _sees_chain(request.user):
        return []
    chain = selectors.audit_chain_overview(checkpoints=1)
    last, passed = chain.last_full, chain.last_full_passed
    hours = f"{chain.max_age / dt.timedelta(hours=1):g} h"
    state = chain.state
    if state == "broken" and last is not None:
        where = f" at event #{last.first_bad_id}" if last.first_bad_id else ""
        status: dashboards.Status = "bad"
        summary = (
            f"{last.get_status_display()}{where}: the last full verification "
            f"({_ago(last.started_at)}) found {len(last.problems)} problem(s)."
        )
    elif state == "stale":
        status = "warn"
        summary = (
            f"Not verified recently: no full verification passed in the last {hours} "
            f"(last pass: {_ago(passed.started_at if passed else None)})."
        )
    elif state == "empty":
        status, summary = "none", "No audit events yet."
    else:
        status = "ok"
        summary = f"Intact: the whole chain verified {_ago(passed.started_at if passed else None)}."
    checkpoint = chain.checkpoints[0] if chain.checkpoints else None
    rows = [
        ("Chain head", f"#{chain.head_sequence}"),
        ("Last full verification", _ago(last.started_at if last else None)),
        ("Events after the last verified", str(chain.unverified)),
        (
            "Last checkpoint",
            f"#{checkpoint.sequence}, {_ago(checkpoint.created_at)}" if checkpoint else "none",
        ),
    ]
    return [
        dashboards.Tile(
            key="audit-chain",
            title="Audit chain",
            hint=(
                "an auditor verifies the chain from Audit; if it stays broken, follow "
                "docs/runbooks.md (audit/chain_broken) before anything else writes."
            ),
            status=status,
            summary=summary,
            url=reverse("admin:dashboard_audit"),
            rows=rows,
        )
    ]


def urls(site: admin.AdminSite) -> list[URLPattern | URLResolver]:
    return [
        path("", site.admin_view(audit_dashboard), name="dashboard_audit"),
        path("timeline/", site.admin_view(audit_timeline), name="dashboard_audit_timeline"),
        path("verify/", site.admin_view(audit_verify), name="dashboard_audit_verify"),
        path("export/", site.admin_view(audit_export), name="dashboard_audit_export"),
    ]


DASHBOARD = dashboards.Dashboard(
    key=KEY, title="Audit", order=40, visible=_visible, urls=urls, tiles=overview_tiles
)
