"""Check runs, results and findings (read-only), the per-check status and trend panel, "Run
checks now", and explaining a finding through integrity.services."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from config import registry
from config.admin_helpers import ReadOnlyAdminMixin, ReadOnlyTabularInline
from config.errors import DomainError
from integrity import selectors, services
from integrity.models import CheckResult, CheckRun, Finding


class CheckResultInline(ReadOnlyTabularInline):
    model = CheckResult
    fields = [
        "check_name",
        "status",
        "failing_count",
        "explained_count",
        "warn_at",
        "error_at",
        "duration_ms",
        "error",
    ]


class FindingInline(ReadOnlyTabularInline):
    model = Finding
    fields = (
        "finding_link",
        "check_name",
        "severity",
        "count",
        "object_type",
        "object_id",
        "sample",
        "explained",
    )
    readonly_fields = fields

    @admin.display(description="Finding")
    def finding_link(self, finding: Finding):
        url = reverse("admin:integrity_finding_change", args=[finding.pk])
        return format_html('<a href="{}">{}</a>', url, finding.message[:120])

    @admin.display(boolean=True)
    def explained(self, finding: Finding) -> bool:
        return finding.is_explained


@admin.register(CheckRun)
class CheckRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Check runs (read-only), the per-check status and trend panel, and "Run checks now"."""

    list_display = [
        "id",
        "status",
        "trigger",
        "triggered_by",
        "schedule",
        "tags_display",
        "created_at",
        "duration_ms",
        "summary",
    ]
    list_filter = ["status", "trigger", "schedule"]
    readonly_fields = [
        "status",
        "trigger",
        "triggered_by",
        "schedule",
        "tags",
        "checks",
        "since",
        "created_at",
        "started_at",
        "finished_at",
        "duration_ms",
        "summary",
    ]
    inlines = [CheckResultInline, FindingInline]

    @admin.display(description="Tags")
    def tags_display(self, run: CheckRun) -> str:
        return ", ".join(run.tags + run.checks) or "all"

    def has_run_permission(self, request) -> bool:
        return request.user.has_perm("integrity.run_checks")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("run/", view(self.run_view), name="integrity_checkrun_run"),
            path("trend/<str:name>/", view(self.trend_view), name="integrity_checkrun_trend"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        checks = selectors.check_status_list(trend=20)
        extra_context = {
            **(extra_context or {}),
            "checks": checks,
            "check_tags": registry.tags(),
            "can_run": self.has_run_permission(request),
        }
        return super().changelist_view(request, extra_context=extra_context)

    @method_decorator(require_POST)
    def run_view(self, request):
        """Run the chosen tag's checks now (all with no tag) and show the run."""
        if not self.has_run_permission(request):
            raise PermissionDenied
        tag = request.POST.get("tag", "")
        try:
            run = services.checks_run(
                trigger=CheckRun.Trigger.ADMIN, actor=request.user, tags=[tag] if tag else []
            )
        except DomainError as exc:
            self.message_user(request, f"[{exc.code}] {exc.message}", level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:integrity_checkrun_changelist"))
        level = {"pass": messages.SUCCESS, "warn": messages.WARNING}.get(run.status, messages.ERROR)
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(run.summary.items()))
        self.message_user(
            request,
            f"Check run #{run.pk}: {run.status} ({counts}) in {run.duration_ms} ms.",
            level=level,
        )
        return HttpResponseRedirect(reverse("admin:integrity_checkrun_change", args=[run.pk]))

    def trend_view(self, request, name: str):
        if not self.has_view_permission(request):
            raise PermissionDenied
        check = registry.all_checks().get(name)
        if check is None:
            raise Http404(f"No check {name!r}.")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Check {name}",
            "opts": self.model._meta,
            "check": check,
            "results": selectors.check_trend(check_name=name, limit=100),
        }
        return TemplateResponse(request, "admin/integrity/checkrun/trend.html", context)


class ExplainForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 80}), max_length=5000)


@admin.register(Finding)
class FindingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Findings (read-only); "Explain" records a reason through integrity.services."""

    list_display = [
        "id",
        "check_name",
        "severity",
        "message_short",
        "count",
        "object_type",
        "object_id",
        "run",
        "explained",
    ]
    list_filter = ["check_name", "severity", ("explanation", admin.EmptyFieldListFilter)]
    search_fields = ["message", "object_id", "key"]
    readonly_fields = [
        "run",
        "check_name",
        "severity",
        "message",
        "count",
        "object_type",
        "object_id",
        "key",
        "details",
        "sample",
        "fingerprint",
        "explanation_display",
    ]
    exclude = ["result", "explanation"]
    list_select_related = ["run"]

    @admin.display(description="Message")
    def message_short(self, finding: Finding) -> str:
        return finding.message[:120]

    @admin.display(boolean=True)
    def explained(self, finding: Finding) -> bool:
        return finding.is_explained

    @admin.display(description="Explanation")
    def explanation_display(self, finding: Finding):
        e = finding.explanation
        if e is None:
            return "-"
        text = format_html(
            "{} ({}, {})", e.reason, e.explained_by, e.explained_at.strftime("%Y-%m-%d %H:%M")
        )
        if e.withdrawn_at:
            return format_html(
                "{}; withdrawn by {}, {}",
                text,
                e.withdrawn_by,
                e.withdrawn_at.strftime("%Y-%m-%d %H:%M"),
            )
        return text

    @admin.display(description="Explain")
    def explain_link(self, finding: Finding):
        e = finding.explanation
        if e is not None and e.withdrawn_at is None:
            url = reverse("admin:integrity_finding_withdraw", args=[finding.pk])
            return format_html('<a class="button" href="{}">Withdraw the explanation</a>', url)
        url = reverse("admin:integrity_finding_explain", args=[finding.pk])
        return format_html('<a class="button" href="{}">Explain this finding</a>', url)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and request.user.has_perm("integrity.explain_finding"):
            fields.append("explain_link")
        return fields

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/explain/", view(self.explain_view), name="integrity_finding_explain"),
            path("<int:pk>/withdraw/", view(self.withdraw_view), name="integrity_finding_withdraw"),
            *super().get_urls(),
        ]

    def withdraw_view(self, request, pk: int):
        """GET asks to confirm; POST withdraws the explanation in force (kept as history)."""
        return self._finding_action(
            request,
            pk,
            title="Withdraw an explanation",
            form=None,
            act=lambda finding, data: services.finding_explanation_withdraw(
                finding=finding, actor=request.user
            ),
            done="Explanation withdrawn: the finding counts again from the next run.",
        )

    def explain_view(self, request, pk: int):
        return self._finding_action(
            request,
            pk,
            title="Explain a finding",
            form=ExplainForm(request.POST or None),
            act=lambda finding, data: services.finding_explain(
                finding=finding, actor=request.user, reason=data["reason"]
            ),
            done="Finding explained: it no longer counts while it stays the same.",
        )

    def _finding_action(self, request, pk: int, *, title: str, form, act, done: str):
        """The explain and withdraw pages: a confirmation or form on GET, the service on a
        valid POST, then back to the finding with what happened."""
        if not request.user.has_perm("integrity.explain_finding"):
            raise PermissionDenied
        finding = get_object_or_404(selectors.finding_list(), pk=pk)
        if request.method == "POST" and (form is None or form.is_valid()):
            try:
                act(finding, form.cleaned_data if form is not None else {})
            except DomainError as exc:
                self.message_user(request, f"[{exc.code}] {exc.message}", level=messages.ERROR)
            else:
                self.message_user(request, done, messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:integrity_finding_change", args=[pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "finding": finding,
            "form": form,
            "withdraw": form is None,
        }
        return TemplateResponse(request, "admin/integrity/finding/explain.html", context)
