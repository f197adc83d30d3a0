"""The Financial dashboard (`/admin/dashboards/financial/`): the trial balance as of a date,
the reconciliation of cached balances against the lines, the financial checks' open findings,
the entries waiting for approval (approve or send back), the periods and their close, and
two charts; three tiles on the Overview.

Reads are finance.selectors and finance.reports; the buttons call the existing services
(maker-checker and the close's checks are theirs: `journal_entry_approve` refuses an
approver's own entry, `period_close` runs the financial checks first and refuses while one
of them has an unexplained finding at error level or above). Each section and button is shown
only to the roles that may use it; each action checks its permission again.
"""

import calendar
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from config import charts, dashboards
from config.errors import DomainError
from finance import money, reports, selectors, services
from finance.models import FiscalPeriod, JournalEntry

KEY = "financial"
VIEW_PERM = "finance.view_journalentry"
APPROVE_PERM = "finance.approve_journalentry"
CLOSE_PERM = "finance.close_fiscalperiod"
FINDINGS_PERM = "integrity.view_finding"

PENDING_PER_PAGE = 20
TRIAL_BALANCE_PER_PAGE = 50
FINDINGS_SHOWN = 20
MISMATCHES_SHOWN = 20
PERIODS_SHOWN = 13
CHART_MONTHS = 12
# Waiting for approval longer than these many days: the approvals tile warns, then is bad.
PENDING_WARN_DAYS = 2
PENDING_BAD_DAYS = 7
# A period still open this many days after its end is overdue (bad); before, due (warn).
CLOSE_GRACE_DAYS = 15


def _visible(user: Any) -> bool:
    return bool(user.has_perm(VIEW_PERM))


class AsOfForm(forms.Form):
    as_of = forms.DateField(
        required=False,
        label="As of",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The end of this day; empty for today.",
    )


def _as_of(request: HttpRequest, today: date) -> tuple[AsOfForm, date]:
    """The trial balance's date from `?as_of=`: today when empty or invalid (the form then
    shows its error)."""
    form = AsOfForm(request.GET if "as_of" in request.GET else None)
    if form.is_bound and form.is_valid() and form.cleaned_data["as_of"]:
        return form, form.cleaned_data["as_of"]
    return form, today


def _months(today: date, count: int) -> list[date]:
    """The first days of the `count` months ending with today's, oldest first."""
    year, month = today.year, today.month
    firsts = []
    for _ in range(count):
        firsts.append(date(year, month, 1))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return firsts[::-1]


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"))


def _charts(today: date) -> list[charts.Chart]:
    months = _months(today, CHART_MONTHS)
    since = months[0]
    until = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    labels = [m.strftime("%b %Y") for m in months]
    figures = selectors.income_expense_by_month(since=since, until=until)
    series: dict[str, Sequence[charts.Number]] = {}
    for currency in sorted({f.currency for f in figures}):
        of = {f.month: f for f in figures if f.currency == currency}
        series[f"Income ({currency})"] = [_cents(of[m].income) if m in of else 0 for m in months]
        series[f"Expenses ({currency})"] = [
            _cents(of[m].expenses) if m in of else 0 for m in months
        ]
    posted = selectors.entries_posted_by_month(since=since, until=until)
    return [
        charts.bar_chart(
            title="Income and expenses per month",
            x_labels=labels,
            series=series,
            y_title="Amount",
        ),
        charts.line_chart(
            title="Entries posted per month",
            x_labels=labels,
            series={"Entries posted": [posted.get(m, 0) for m in months]},
            y_title="Entries",
        ),
    ]


def _entry_total(entry: JournalEntry) -> str:
    """The entry's debit total per currency, from its prefetched lines (exact)."""
    totals: dict[str, Decimal] = {}
    for line in entry.lines.all():
        if line.side == "D":
            totals[line.currency] = totals.get(line.currency, Decimal(0)) + line.amount
    return ", ".join(money.format_amount(v, c) for c, v in sorted(totals.items())) or "-"


def _age(since: Any, now: Any) -> str:
    if since is None:
        return "-"
    days = (now - since).days
    if days >= 1:
        return f"{days} day{'s' if days != 1 else ''}"
    hours = int((now - since).total_seconds() // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"


def financial_dashboard(request: HttpRequest) -> HttpResponse:
    if not _visible(request.user):
        raise PermissionDenied
    user, now = request.user, timezone.now()
    today = timezone.localdate()
    form, as_of = _as_of(request, today)

    trial = reports.trial_balance(as_of=as_of)
    tb_page = Paginator(trial.rows, TRIAL_BALANCE_PER_PAGE).get_page(request.GET.get("tb_page"))
    mismatches = selectors.balance_mismatches()

    pending_page = Paginator(selectors.pending_entry_list(), PENDING_PER_PAGE).get_page(
        request.GET.get("page")
    )
    may_approve = user.has_perm(APPROVE_PERM)
    pending_rows = [
        {
            "entry": entry,
            "url": reverse("admin:finance_journalentry_change", args=[entry.pk]),
            "total": _entry_total(entry),
            "age": _age(entry.submitted_at, now),
            "own": user.pk in (entry.created_by_id, entry.submitted_by_id),
        }
        for entry in pending_page.object_list
    ]

    findings: dict[str, Any] | None = None
    if user.has_perm(FINDINGS_PERM):
        open_findings = selectors.financial_findings_open()
        findings = {
            "count": open_findings.count(),
            "rows": [
                {
                    "finding": f,
                    "url": reverse("admin:integrity_finding_change", args=[f.pk]),
                }
                for f in open_findings[:FINDINGS_SHOWN]
            ],
        }

    periods = selectors.period_status_list(today=today, limit=PERIODS_SHOWN)
    context = {
        **admin.site.each_context(request),
        **dashboards.nav_context(request, KEY),
        "title": "Financial",
        "today": today,
        "as_of": as_of,
        "as_of_form": form,
        "trial": trial,
        "trial_totals": sorted(trial.totals.items()),
        "tb_page": tb_page,
        "mismatches": mismatches[:MISMATCHES_SHOWN],
        "mismatch_count": len(mismatches),
        "pending_page": pending_page,
        "pending_rows": pending_rows,
        "may_approve": may_approve,
        "findings": findings,
        "periods": periods,
        "may_close": user.has_perm(CLOSE_PERM),
        "may_view_periods": user.has_perm("finance.view_fiscalperiod"),
        "charts": _charts(today),
        "here": request.get_full_path(),
    }
    return TemplateResponse(request, "admin/finance/dashboard.html", context)


# --- actions ---------------------------------------------------------------------------


def _back(request: HttpRequest) -> HttpResponseRedirect:
    return dashboards.redirect_back(request, reverse(f"admin:dashboard_{KEY}"))


def _actor(request: HttpRequest) -> User:
    """The signed-in user (admin_view lets no one else through)."""
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user


def _object_id(request: HttpRequest, field: str) -> int | None:
    return dashboards.posted_id(request, field)


def _pending_entry(request: HttpRequest) -> JournalEntry | None:
    """The entry the form names; None (with a message) for a missing or malformed id, 404
    for an unknown one."""
    pk = _object_id(request, "entry")
    if pk is None:
        messages.error(request, "No entry was named: nothing was done.")
        return None
    try:
        return JournalEntry.objects.get(pk=pk)
    except JournalEntry.DoesNotExist:
        raise Http404("No such entry.") from None


@require_POST
def approve_entry(request: HttpRequest) -> HttpResponse:
    """Approve and post a pending entry (maker-checker: the service refuses one's own)."""
    if not request.user.has_perm(APPROVE_PERM):
        raise PermissionDenied
    entry = _pending_entry(request)
    if entry is not None:
        try:
            posted = services.journal_entry_approve(entry=entry, actor=_actor(request))
        except DomainError as exc:
            messages.error(request, f"{entry} was not approved: {exc.message}")
        else:
            messages.success(request, f"{entry} approved and posted as {posted}.")
    return _back(request)


@require_POST
def reject_entry(request: HttpRequest) -> HttpResponse:
    """Send a pending entry back to its author as a draft."""
    if not request.user.has_perm(APPROVE_PERM):
        raise PermissionDenied
    entry = _pending_entry(request)
    if entry is not None:
        try:
            services.journal_entry_reject(entry=entry, actor=_actor(request))
        except DomainError as exc:
            messages.error(request, f"{entry} was not sent back: {exc.message}")
        else:
            messages.success(request, f"{entry} sent back to its author as a draft.")
    return _back(request)


@require_POST
def close_period(request: HttpRequest) -> HttpResponse:
    """Close a period: `period_close` runs the financial checks first and refuses while one
    of them has an unexplained finding at error level or above (the message names them)."""
    if not request.user.has_perm(CLOSE_PERM):
        raise PermissionDenied
    pk = _object_id(request, "period")
    if pk is None:
        messages.error(request, "No period was named: nothing was closed.")
        return _back(request)
    try:
        period = FiscalPeriod.objects.get(pk=pk)
    except FiscalPeriod.DoesNotExist:
        raise Http404("No such period.") from None
    try:
        services.period_close(period=period, actor=_actor(request))
    except DomainError as exc:
        messages.error(request, f"Period {period} was not closed: {exc.message}")
    else:
        messages.success(request, f"Period {period} closed; the financial checks passed.")
    return _back(request)


# --- Overview tiles --------------------------------------------------------------------


def overview_tiles(request: HttpRequest) -> list[dashboards.Tile]:
    """Approvals waiting, periods due to close, open financial findings (a few queries)."""
    url = reverse(f"admin:dashboard_{KEY}")
    now, today = timezone.now(), timezone.localdate()
    tiles = [_approvals_tile(url, now), _periods_tile(url, today)]
    if request.user.has_perm(FINDINGS_PERM):
        tiles.append(_findings_tile(url))
    return tiles


def _approvals_tile(url: str, now: Any) -> dashboards.Tile:
    pending = selectors.pending_entry_summary()
    oldest = pending.oldest_submitted_at
    waited = (now - oldest) if oldest else timedelta(0)
    status: dashboards.Status = "ok"
    summary = "No entries are waiting for approval."
    if pending.count:
        age = _age(oldest, now)
        summary = f"{pending.count} waiting for approval; the oldest for {age}."
        if waited >= timedelta(days=PENDING_BAD_DAYS):
            status = "bad"
            summary = f"An entry has waited for approval {age}: {pending.count} waiting."
        elif waited >= timedelta(days=PENDING_WARN_DAYS):
            status = "warn"
    return dashboards.Tile(
        key="finance-approvals",
        title="Entries waiting for approval",
        hint=(
            "an approver opens Financial, reads each waiting entry and approves it or sends it "
            "back to its author (never their own)."
        ),
        status=status,
        summary=summary,
        url=url,
        rows=[("Waiting", str(pending.count)), ("Oldest", _age(oldest, now))],
    )


def _periods_tile(url: str, today: date) -> dashboards.Tile:
    overdue = selectors.periods_overdue(today=today)
    status: dashboards.Status = "ok"
    summary = "Every period that has ended is closed."
    rows: list[tuple[str, str]] = [("Ended, still open", str(overdue.count))]
    if overdue.count and overdue.oldest_end is not None:
        late = (today - overdue.oldest_end).days
        names = ", ".join(overdue.names) + (", ..." if overdue.count > len(overdue.names) else "")
        rows.append(("Oldest", f"{names} (ended {late} days ago)"))
        if late > CLOSE_GRACE_DAYS:
            status = "bad"
            summary = f"{overdue.count} ended period(s) still open, one for {late} days."
        else:
            status = "warn"
            summary = f"{overdue.count} ended period(s) to close: {names}."
    return dashboards.Tile(
        key="finance-periods",
        title="Period close",
        hint=(
            "an approver clears the period's waiting entries and drafts, then presses \"Run checks"
            ' and close" on Financial; a finding that blocks it is explained on Integrity.'
        ),
        status=status,
        summary=summary,
        url=url,
        rows=rows,
    )


def _findings_tile(url: str) -> dashboards.Tile:
    found = selectors.financial_findings_summary()
    rows = [(severity.capitalize(), str(n)) for severity, n in sorted(found.by_severity.items())]
    status: dashboards.Status
    if found.last_run_at is None:
        status, summary = "none", "The financial checks have not run yet."
    elif found.serious:
        status = "bad"
        summary = f"{found.serious} open finding(s) at error level or above: the books disagree."
    elif found.total:
        status, summary = "warn", f"{found.total} open warning(s) from the financial checks."
    else:
        status, summary = "ok", "The financial checks found nothing open."
    if found.last_run_at is not None:
        rows.append(("Last run", timezone.localtime(found.last_run_at).strftime("%Y-%m-%d %H:%M")))
    return dashboards.Tile(
        key="finance-findings",
        title="Financial checks",
        hint=(
            "open the finding from Financial or Integrity, fix the cause (docs/runbooks.md has "
            "the check's entry) or explain it if it is expected, then run the checks again."
        ),
        status=status,
        summary=summary,
        url=url,
        rows=rows,
    )


def _urls(site: AdminSite) -> list[URLPattern | URLResolver]:
    return [
        path("", site.admin_view(financial_dashboard), name=f"dashboard_{KEY}"),
        path("approve/", site.admin_view(approve_entry), name=f"dashboard_{KEY}_approve"),
        path("reject/", site.admin_view(reject_entry), name=f"dashboard_{KEY}_reject"),
        path("close/", site.admin_view(close_period), name=f"dashboard_{KEY}_close"),
    ]


DASHBOARD = dashboards.register(
    dashboards.Dashboard(
        key=KEY,
        title="Financial",
        order=20,
        visible=_visible,
        urls=_urls,
        tiles=overview_tiles,
    )
)

__all__ = ["DASHBOARD"]
