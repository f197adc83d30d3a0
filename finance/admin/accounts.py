"""The chart of accounts: written through finance.services; accounts with postings keep
their currency and type."""

from django import forms
from django.contrib import admin

from config.admin_helpers import ViewOnlyHistoryAdmin
from config.errors import DomainError
from finance import money, rules, services
from finance.admin.common import as_validation_error, report
from finance.exceptions import RuleViolation
from finance.models import Account


class CurrencyInUseFilter(admin.SimpleListFilter):
    """Only the currencies the chart of accounts uses, not all thirty."""

    title = "currency"
    parameter_name = "currency"

    def lookups(self, request, model_admin):
        used = Account.objects.order_by("currency").values_list("currency", flat=True).distinct()
        return [(c, c) for c in used]

    def queryset(self, request, queryset):
        return queryset.filter(currency=self.value()) if self.value() else queryset


class AccountForm(forms.ModelForm):
    class Meta:
        model = Account
        fields = [
            "code",
            "name",
            "type",
            "currency",
            "parent",
            "is_active",
            "allow_negative",
            "is_control",
            "description",
        ]

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if {"type", "currency"} <= data.keys():
            try:
                rules.raise_if(
                    rules.validate_account(
                        account=self.instance if self.instance.pk else None,
                        type=data["type"],
                        currency=data["currency"],
                        parent=data.get("parent"),
                    )
                )
            except RuleViolation as exc:
                raise as_validation_error(exc) from exc
        return data


@admin.register(Account)
class AccountAdmin(ViewOnlyHistoryAdmin):
    form = AccountForm
    list_display = [
        "code",
        "name",
        "type",
        "currency",
        "balance_display",
        "is_active",
        "is_control",
        "allow_negative",
    ]
    list_filter = ["type", CurrencyInUseFilter, "is_active", "is_control"]
    search_fields = ["code", "name"]
    list_select_related = ["balance"]

    @admin.display(description="Balance")
    def balance_display(self, account: Account) -> str:
        return money.format_amount(account.balance.balance, account.currency)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            locked = ["code"]
            if obj.lines.exists():
                locked += list(services.LOCKED_WHEN_POSTED)
            return locked
        return []

    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in form.cleaned_data if f != "code"}
        try:
            if change:
                services.account_update(account=obj, **data)
            else:
                created = services.account_create(code=form.cleaned_data["code"], **data)
                obj.pk = created.pk
        except DomainError as exc:
            # The form already ran the rules; this only happens in a race.
            report(self, request, obj, exc)

    def delete_model(self, request, obj):
        services.account_delete(account=obj)

    def delete_queryset(self, request, queryset):
        for account in queryset:
            services.account_delete(account=account)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.lines.exists():
            return False
        return super().has_delete_permission(request, obj)


# Periods --------------------------------------------------------------------
