"""The Alerts dashboard (`/admin/dashboards/alerts/`) and its Overview tile.

The page: firing, acknowledged and resolved alerts with their timelines, where each firing
alert stands in its escalation policy, the silences and maintenance windows, and two charts
(alerts raised by severity; median time to acknowledge). Its actions acknowledge, resolve and
silence through the alert services, which write the audit events; the views write nothing.
Registered on the console by `alerts/admin.py`.
"""

from datetime import date, datetime, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from alerts import selectors, services
from alerts.models import SEVERITY_RANK, Alert, AlertState, Severity, Silence
from config import charts, dashboards
from config.errors import DomainError

KEY = "alerts"
OPEN_LIMIT = 50  # firing and acknowledged alerts listed on the page (the rest are counted)
TILE_LIMIT = 5
RESOLVED_PER_PAGE = 20
RANGES = ("week", "month", "year")
# Silences from the page last at most a week, as through the API (AlertSilenceSerializer).
DURATIONS = [
    ("15", "15 minutes"),
    ("60", "1 hour"),
    ("240", "4 hours"),
    ("480", "8 hours"),
    ("1440", "1 day"),
    ("4320", "3 days"),
    ("10080", "7 days"),
]
SEVERITIES_DOWN = sorted(Severity.values, key=lambda s: -SEVERITY_RANK[s])

PERM_VIEW = "alerts.view_alert"
PERM_ACK = "alerts.acknowledge_alert"
PERM_RESOLVE = "alerts.resolve_alert"
PERM_SILENCE = "alerts.add_silence"


def visible(user: Any) -> bool:
    return bool(user.has_perm(PERM_VIEW))


class SilenceForm(forms.Form):
    """A silence from the page: what it matches (as the Silence model does), for how long, why.
    silence_create checks the rest (and asks for a second operator for what could be critical)."""

    source = forms.CharField(max_length=100, required=False, help_text="Blank matches any source.")
    key_pattern = forms.CharField(
        max_length=255, required=False, initial="*", help_text="Shell-style, e.g. finance.*"
    )
    severity = forms.ChoiceField(
        choices=[("", "Any (needs a second operator's approval)"), *Severity.choices],
        required=False,
    )
    duration = forms.TypedChoiceField(choices=DURATIONS, coerce=int, initial="60")
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_reason(self) -> str:
        reason: str = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why.")
        return reason


# --- the page ---------------------------------------------------------------------------------


def alerts_dashboard(request: HttpRequest) -> TemplateResponse:
    if not visible(request.user):
        raise PermissionDenied
    now = timezone.now()
    user = request.user
    chosen = dashboards.selected_range(request, default="month", allowed=RANGES)
    firing = selectors.alert_list_open(state=AlertState.FIRING, limit=OPEN_LIMIT)
    acknowledged = selectors.alert_list_open(state=AlertState.ACKNOWLEDGED, limit=OPEN_LIMIT)
    counts = selectors.alert_open_counts()
    active, upcoming = selectors.silence_list_current(now=now)
    escalation = selectors.escalation_states(alerts=firing, silences=active, now=now)
    resolved = Paginator(selectors.alert_resolved_queryset(), RESOLVED_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        **admin.site.each_context(request),
        **dashboards.nav_context(request, KEY),
        **dashboards.range_context(request, chosen, allowed=RANGES),
        "title": "Alerts",
        "firing": [_row(a, escalation.get(a.pk)) for a in firing],
        "firing_total": sum(counts[AlertState.FIRING].values()),
        "acknowledged": [_row(a) for a in acknowledged],
        "acknowledged_total": sum(counts[AlertState.ACKNOWLEDGED].values()),
        "resolved": resolved,
        "resolved_rows": [_row(a) for a in resolved.object_list],
        "active_silences": [_silence_row(s, now) for s in active],
        "upcoming_silences": [_silence_row(s, now) for s in upcoming],
        "silence_limit": selectors.SILENCE_LIMIT,
        "can_acknowledge": user.has_perm(PERM_ACK),
        "can_resolve": user.has_perm(PERM_RESOLVE),
        "can_silence": user.has_perm(PERM_SILENCE),
        "can_view_silences": user.has_perm("alerts.view_silence"),
        "silence_form": SilenceForm(initial=_silence_initial(request)),
        "next": request.get_full_path(),
        **_charts(chosen, now),
    }
    return TemplateResponse(request, "admin/alerts/dashboard.html", context)


def _row(alert: Alert, escalation: selectors.EscalationState | None = None) -> dict[str, Any]:
    """An alert and its timeline, events and deliveries merged, newest first (both prefetched)."""
    timeline = [
        {"at": e.at, "what": e.kind.replace("_", " "), "who": e.actor or "", "note": e.note}
        for e in getattr(alert, "recent_events", [])
    ] + [
        {
            "at": d.sent_at or d.created_at,
            "what": f"{d.get_kind_display().lower()} by {d.channel}: {d.get_status_display()}",
            "who": d.target.name,
            "note": d.last_error[:200] if d.last_error else f"step {d.step + 1}",
        }
        for d in getattr(alert, "recent_deliveries", [])
    ]
    timeline.sort(key=lambda item: item["at"], reverse=True)
    return {"alert": alert, "escalation": escalation, "timeline": timeline}


def _silence_row(silence: Silence, now: datetime) -> dict[str, Any]:
    waiting = silence.needs_approval and silence.approved_at is None
    return {
        "silence": silence,
        "window": (
            f"days {silence.weekdays}, {silence.window_start:%H:%M}-{silence.window_end:%H:%M} "
            f"{silence.timezone}"
            if silence.weekdays and silence.window_start and silence.window_end
            else ""
        ),
        "holding": selectors.silence_open_now(silence=silence, now=now),
        "waiting_approval": waiting,
        "url": reverse("admin:alerts_silence_change", args=[silence.pk]),
    }


def _silence_initial(request: HttpRequest) -> dict[str, str]:
    """The form prefilled from a firing alert's "Silence" link (`?silence_source=&silence_key=`)."""
    initial = {}
    for field, param, limit in (
        ("source", "silence_source", 100),
        ("key_pattern", "silence_key", 255),
    ):
        value = request.GET.get(param, "")
        if value and len(value) <= limit:
            initial[field] = value
    severity = request.GET.get("silence_severity", "")
    if severity in Severity.values:
        initial["severity"] = severity
    return initial


def _charts(chosen: dashboards.Range, now: datetime) -> dict[str, Any]:
    since = now - chosen.span
    weekly = chosen.span > timedelta(days=60)
    step = timedelta(days=7 if weekly else 1)
    first = timezone.localtime(since).date()
    if weekly:
        first -= timedelta(days=first.weekday())
    buckets: list[date] = []
    day = first
    while day <= timezone.localtime(now).date():
        buckets.append(day)
        day += step
    counts = selectors.alert_raised_counts(since=since, bucket="week" if weekly else "day")
    raised = charts.bar_chart(
        title=f"Alerts raised per {'week' if weekly else 'day'} by severity",
        x_labels=[b.isoformat() for b in buckets],
        series={
            Severity(s).label: [counts.get((b, s), 0) for b in buckets] for s in SEVERITIES_DOWN
        },
        y_title="alerts",
        stacked=True,
    )
    medians = selectors.alert_ack_minutes_by_week(since=since)
    ack = None
    if medians:
        ack = charts.line_chart(
            title="Median time to acknowledge per week (minutes)",
            x_labels=[w.isoformat() for w in medians],
            series={"median minutes": [round(m, 1) for m in medians.values()]},
            y_title="minutes",
        )
    return {"raised_chart": raised, "ack_chart": ack}


# --- the actions ------------------------------------------------------------------------------


def _back(request: HttpRequest) -> HttpResponseRedirect:
    """To `next` when it is a page of this site, else to the dashboard."""
    return dashboards.redirect_back(request, reverse("admin:dashboard_alerts"))


def _posted_alert(request: HttpRequest) -> Alert | None:
    """The alert the form names, or None (with an error message) for a missing or unknown id."""
    pk = dashboards.posted_id(request, "alert")
    alert = Alert.objects.filter(pk=pk).first() if pk is not None else None
    if alert is None:
        messages.error(request, "No such alert: nothing was changed.")
    return alert


def _actor(request: HttpRequest) -> User:
    """The signed-in user (admin_view lets only active staff through)."""
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user


def _domain_error(request: HttpRequest, alert: Alert, exc: DomainError) -> None:
    messages.error(request, f"{alert.title}: {exc.message} [{exc.code}]")


@require_POST
def acknowledge(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERM_ACK):
        raise PermissionDenied
    alert = _posted_alert(request)
    if alert is not None:
        try:
            services.alert_acknowledge(alert=alert, actor=_actor(request))
        except DomainError as exc:
            _domain_error(request, alert, exc)
        else:
            messages.success(request, f"{alert.title}: acknowledged; escalation has stopped.")
    return _back(request)


@require_POST
def resolve(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERM_RESOLVE):
        raise PermissionDenied
    alert = _posted_alert(request)
    if alert is not None:
        note = request.POST.get("note", "")[:2000]
        if "\x00" in note:  # PostgreSQL refuses it in text (a 500), SQLite would keep it
            messages.error(
                request, f"{alert.title}: not resolved: the note cannot contain NUL characters."
            )
            return _back(request)
        try:
            services.alert_resolve(alert=alert, actor=_actor(request), note=note)
        except DomainError as exc:
            _domain_error(request, alert, exc)
        else:
            messages.success(request, f"{alert.title}: resolved.")
    return _back(request)


@require_POST
def silence(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERM_SILENCE):
        raise PermissionDenied
    form = SilenceForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.get_json_data().items():
            label = field.replace("_", " ").capitalize()
            text = " ".join(e["message"] for e in errors)
            messages.error(request, f"Silence not created: {label}: {text}")
        return _back(request)
    data = form.cleaned_data
    try:
        created = services.silence_create(
            actor=_actor(request),
            reason=data["reason"],
            source=data["source"],
            key_pattern=data["key_pattern"] or "*",
            severity=data["severity"],
            ends_at=timezone.now() + timedelta(minutes=data["duration"]),
        )
    except DomainError as exc:
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in (exc.fields or {}).items())
        messages.error(request, f"Silence not created: {exc.message} {problems} [{exc.code}]")
        return _back(request)
    note = (
        " It needs a second operator's approval (Silences in the admin) before it holds anything."
        if created.needs_approval
        else ""
    )
    messages.success(request, f"{created}: created.{note}")
    return _back(request)


# --- the Overview tile ------------------------------------------------------------------------


def overview_tiles(request: HttpRequest) -> list[dashboards.Tile]:
    """Open alerts by severity; the firing, unacknowledged ones listed with Acknowledge buttons."""
    counts = selectors.alert_open_counts()
    firing = counts[AlertState.FIRING]
    acked = counts[AlertState.ACKNOWLEDGED]
    unacked = sum(firing.values())
    serious = firing.get(Severity.CRITICAL, 0) + firing.get(Severity.ERROR, 0)
    if serious:
        status: dashboards.Status = "bad"
    elif firing.get(Severity.WARNING, 0):
        status = "warn"
    else:
        status = "ok"
    if unacked:
        by_severity = ", ".join(f"{firing[s]} {s}" for s in SEVERITIES_DOWN if firing.get(s))
        summary = f"{unacked} firing and not acknowledged ({by_severity})."
        if serious:
            summary += " Someone must acknowledge the errors."
    else:
        summary = "No alert is firing unacknowledged."
    if sum(acked.values()):
        summary += f" {sum(acked.values())} acknowledged, not yet resolved."
    rows = [
        (Severity(s).label, f"{firing.get(s, 0)} firing, {acked.get(s, 0)} acknowledged")
        for s in SEVERITIES_DOWN
        if firing.get(s) or acked.get(s)
    ]
    listed = (
        selectors.alert_list_open(state=AlertState.FIRING, limit=TILE_LIMIT, timeline=False)
        if unacked
        else []
    )
    return [
        dashboards.Tile(
            key="alerts-open",
            title="Open alerts",
            hint=(
                "acknowledge the alert here (that stops its escalation), then follow its runbook "
                "entry in docs/runbooks.md and resolve it on Alerts."
            ),
            status=status,
            summary=summary,
            url=reverse("admin:dashboard_alerts"),
            rows=rows,
            template="admin/alerts/_tile_open.html",
            context={
                "alerts": listed,
                "more": max(unacked - len(listed), 0),
                "can_acknowledge": request.user.has_perm(PERM_ACK),
                "acknowledge_url": reverse("admin:dashboard_alerts_acknowledge"),
                "next": reverse("admin:index"),
            },
        )
    ]


def urls(site: AdminSite) -> list[URLPattern | URLResolver]:
    return [
        path("", site.admin_view(alerts_dashboard), name="dashboard_alerts"),
        path("acknowledge/", site.admin_view(acknowledge), name="dashboard_alerts_acknowledge"),
        path("resolve/", site.admin_view(resolve), name="dashboard_alerts_resolve"),
        path("silence/", site.admin_view(silence), name="dashboard_alerts_silence"),
    ]


DASHBOARD = dashboards.Dashboard(
    key=KEY, title="Alerts", order=50, visible=visible, urls=urls, tiles=overview_tiles
)
