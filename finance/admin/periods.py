"""Fiscal periods: create, rename, close (the checks run first) and reopen, through the
services."""

from django.contrib import admin

from config.admin_helpers import ViewOnlyHistoryAdmin
from config.errors import DomainError
from finance import services
from finance.admin.common import report
from finance.models import FiscalPeriod


@admin.register(FiscalPeriod)
class FiscalPeriodAdmin(ViewOnlyHistoryAdmin):
    list_display = [
        "name",
        "fiscal_year",
        "start_date",
        "end_date",
        "status",
        "closed_at",
        "closed_by",
    ]
    list_filter = ["status", "fiscal_year"]
    readonly_fields = ["status", "closed_at", "closed_by", "reopened_at", "reopened_by"]
    actions = ["close_periods", "reopen_periods"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return [*self.readonly_fields, "fiscal_year", "start_date", "end_date"]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            services.period_rename(period=obj, name=form.cleaned_data["name"])
            return
        created = services.period_create(
            name=obj.name,
            start_date=obj.start_date,
            end_date=obj.end_date,
            fiscal_year=obj.fiscal_year,
        )
        obj.pk = created.pk

    def has_delete_permission(self, request, obj=None):
        return False

    def has_close_permission(self, request):
        return request.user.has_perm("finance.close_fiscalperiod")

    def has_reopen_permission(self, request):
        return request.user.has_perm("finance.reopen_fiscalperiod")

    @admin.action(description="Close selected periods", permissions=["close"])
    def close_periods(self, request, queryset):
        for period in queryset:
            try:
                services.period_close(period=period, actor=request.user)
                self.message_user(request, f"{period} closed.")
            except DomainError as exc:
                report(self, request, period, exc)

    @admin.action(description="Reopen selected periods", permissions=["reopen"])
    def reopen_periods(self, request, queryset):
        for period in queryset:
            try:
                services.period_reopen(period=period, actor=request.user)
                self.message_user(request, f"{period} reopened.")
            except DomainError as exc:
                report(self, request, period, exc)


# Journal entries ------------------------------------------------------------
