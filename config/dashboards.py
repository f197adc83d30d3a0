"""The operations console: the admin's dashboards and the Overview that the admin index shows.

Config imports no app, so the apps register here (the same inversion as checks and
schedules): each app's `admin` module (loaded by the admin's autodiscovery) calls
`register(Dashboard(...))` for its page. A `Dashboard` names its page, who may see it, the
URLs it serves under `<admin>/dashboards/<key>/` (its page at `""` and its actions) and the
tiles it adds to the Overview. `install(site)` adds every registered dashboard's URLs to the
admin site; `overview(request)` asks each visible dashboard for its tiles.

Templates: `admin/dashboards/base.html` (the tab bar, breadcrumbs, the range selector),
`admin/dashboards/_tile.html`, `admin/dashboards/_chart.html` (a `config.charts.Chart` with
its text alternative). Styles are in `config/static/ledgerguard/admin.css` (`lg-` classes).
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import URLPattern, URLResolver, include, path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from config.charts import Chart

logger = logging.getLogger("ledgerguard.dashboards")

Status = Literal["ok", "warn", "bad", "none"]
STATUS_LABELS: dict[str, str] = {
    "ok": "OK",
    "warn": "Needs attention",
    "bad": "In trouble",
    "none": "No data yet",
}


@dataclass(frozen=True)
class Tile:
    """One box on the Overview. `status` picks its colour and its word (never colour alone);
    `rows` are (label, value) lines; `template` renders a body of its own instead (with
    `context`), for tiles that act, such as the alerts' acknowledge buttons. `hint` is what to
    do first when the tile is amber or red (shown only then)."""

    key: str
    title: str
    status: Status
    summary: str
    url: str = ""
    rows: Sequence[tuple[str, str]] = ()
    chart: Chart | None = None
    template: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    hint: str = ""

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


@dataclass(frozen=True)
class Dashboard:
    """A page of the console. `visible(user)` decides the tab, the page and the tiles; the
    page's actions check their own permissions and go through the services. `urls(site)`
    returns the page (path `""`, named `dashboard_<key>`) and its actions, wrapped in
    `site.admin_view` by the app."""

    key: str
    title: str
    order: int
    visible: Callable[[Any], bool]
    urls: Callable[[AdminSite], list[URLPattern | URLResolver]]
    tiles: Callable[[HttpRequest], list[Tile]] | None = None

    @property
    def url_name(self) -> str:
        return f"admin:dashboard_{self.key}"

    def url(self) -> str:
        return reverse(self.url_name)


_DASHBOARDS: dict[str, Dashboard] = {}


def register(dashboard: Dashboard) -> Dashboard:
    if dashboard.key in _DASHBOARDS and _DASHBOARDS[dashboard.key] != dashboard:
        raise ValueError(f"dashboard {dashboard.key!r} registered twice")
    _DASHBOARDS[dashboard.key] = dashboard
    return dashboard


def unregister(key: str) -> None:
    """For tests that register a page of their own."""
    _DASHBOARDS.pop(key, None)


def registered() -> list[Dashboard]:
    return sorted(_DASHBOARDS.values(), key=lambda d: (d.order, d.key))


def visible_dashboards(user: Any) -> list[Dashboard]:
    if not (user.is_active and user.is_staff):
        return []
    return [d for d in registered() if d.visible(user)]


def overview(request: HttpRequest) -> list[Tile]:
    """The Overview's tiles, in dashboard order, from the dashboards the user may see. A
    dashboard whose tiles fail to read gives one red tile saying so (the error goes to the
    log): the index is the way into the whole admin, and one broken tile must not close it."""
    tiles: list[Tile] = []
    for dashboard in visible_dashboards(request.user):
        if dashboard.tiles is None:
            continue
        try:
            tiles.extend(dashboard.tiles(request))
        except Exception:
            logger.exception("the %s dashboard's Overview tiles failed", dashboard.key)
            tiles.append(
                Tile(
                    key=f"{dashboard.key}-unreadable",
                    title=dashboard.title,
                    status="bad",
                    summary="This part of the Overview could not be read.",
                    url=dashboard.url(),
                    hint="open its dashboard; the error is in the server's log "
                    "(ledgerguard.dashboards).",
                )
            )
    return tiles


def nav_context(request: HttpRequest, current: str) -> dict[str, Any]:
    """What `admin/dashboards/base.html` needs for its tab bar."""
    return {
        "dashboards": [
            {"key": d.key, "title": d.title, "url": d.url(), "current": d.key == current}
            for d in visible_dashboards(request.user)
        ],
        "dashboard_key": current,
    }


def install(site: AdminSite) -> None:
    """Adds every registered dashboard's URLs under `dashboards/<key>/` to the site."""
    site_urls = site.get_urls

    def get_urls() -> list[URLResolver | URLPattern]:
        own: list[URLResolver | URLPattern] = [
            path(f"dashboards/{d.key}/", include(d.urls(site))) for d in registered()
        ]
        return [*own, *site_urls()]

    site.get_urls = get_urls  # type: ignore[method-assign]


# --- what every dashboard's actions share -------------------------------------------------


def redirect_back(request: HttpRequest, default: str) -> HttpResponseRedirect:
    """After an action: to the form's `next` when it is a page of this site, else `default`
    (never elsewhere: `//evil`, `https:evil`, `javascript:` and the rest fall back)."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(default)


def posted_id(request: HttpRequest, field: str) -> int | None:
    """The row id a form posts in `field`, or None when it is missing or not an id: ASCII
    digits only ("²".isdigit() is true and int("²") raises), at most 18 of them (a bigint)."""
    raw = request.POST.get(field, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


# --- time ranges -----------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """A selectable time range (`?range=day`): its span and the step its charts use."""

    key: str
    label: str
    span: timedelta
    step: timedelta


RANGES: dict[str, Range] = {
    r.key: r
    for r in (
        Range("hour", "Last hour", timedelta(hours=1), timedelta(minutes=1)),
        Range("day", "Last 24 hours", timedelta(days=1), timedelta(hours=1)),
        Range("week", "Last 7 days", timedelta(days=7), timedelta(hours=6)),
        Range("month", "Last 30 days", timedelta(days=30), timedelta(days=1)),
        Range("year", "Last 365 days", timedelta(days=365), timedelta(days=7)),
    )
}


def selected_range(
    request: HttpRequest, default: str = "day", allowed: Sequence[str] = ()
) -> Range:
    """The range the query string asks for; anything unknown falls back to the default (a
    dashboard never answers 400 or 500 to a hand-edited URL)."""
    keys = tuple(allowed) or tuple(RANGES)
    key = request.GET.get("range", default)
    return RANGES[key if key in keys else default]


def range_context(request: HttpRequest, chosen: Range, allowed: Sequence[str] = ()) -> dict:
    keys = tuple(allowed) or tuple(RANGES)
    return {
        "ranges": [{"key": k, "label": RANGES[k].label, "current": k == chosen.key} for k in keys],
        "range": chosen,
        "range_start": timezone.now() - chosen.span,
    }
