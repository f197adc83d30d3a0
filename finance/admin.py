"""Ledger admin: every write goes through finance.services; posted entries are read-only."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Min, Q, Sum
from django.forms.models import BaseInlineFormSet

from config.admin_helpers import ViewOnlyHistoryAdmin
from config.errors import DomainError
from finance import money, rules, services
from finance.exceptions import RuleViolation
from finance.models import (
    Account,
    EntryStatus,
    FiscalPeriod,
    JournalEntry,
    JournalLine,
    Side,
)


def _as_validation_error(exc: RuleViolation) -> ValidationError:
    return ValidationError(
        [ValidationError(f"[{v.code}] {v.message}", code=v.code) for v in exc.violations]
    )


def _report(modeladmin, request, obj, exc: DomainError) -> None:
    modeladmin.message_user(request, f"{obj}: [{exc.code}] {exc.message}", level=messages.ERROR)


# Accounts -------------------------------------------------------------------


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
                raise _as_validation_error(exc) from exc
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
            _report(self, request, obj, exc)

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
                _report(self, request, period, exc)

    @admin.action(description="Reopen selected periods", permissions=["reopen"])
    def reopen_periods(self, request, queryset):
        for period in queryset:
            try:
                services.period_reopen(period=period, actor=request.user)
                self.message_user(request, f"{period} reopened.")
            except DomainError as exc:
                _report(self, request, period, exc)


# Journal entries ------------------------------------------------------------


class LineFormSet(BaseInlineFormSet):
    """Runs the posting rules on the whole entry, so the admin refuses what the API refuses."""

    def clean(self):
        super().clean()
        if any(self.errors) or not self.instance.entry_date:
            return
        lines = [
            {
                "account": f.cleaned_data["account"],
                "side": f.cleaned_data["side"],
                "amount": f.cleaned_data["amount"],
                "description": f.cleaned_data.get("description", ""),
            }
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        try:
            rules.check_entry(
                entry_date=self.instance.entry_date, lines=services.line_inputs(lines)
            )
        except RuleViolation as exc:
            raise _as_validation_error(exc) from exc
        self.line_data = lines


class JournalLineInline(admin.TabularInline):
    model = JournalLine
    formset = LineFormSet
    fields = ["account", "side", "amount", "description"]
    autocomplete_fields = ["account"]
    extra = 2

    def get_fields(self, request, obj=None):
        if self.has_change_permission(request, obj):
            return self.fields
        return ["account", "side", "amount_display", "description"]

    def get_readonly_fields(self, request, obj=None):
        return [] if self.has_change_permission(request, obj) else self.get_fields(request, obj)

    @admin.display(description="Amount")
    def amount_display(self, line: JournalLine) -> str:
        return money.format_amount(line.amount, line.currency)

    def get_extra(self, request, obj=None, **kwargs):
        return 2 if obj is None else 0

    # Lines are part of their entry: the entry's permissions and state decide.
    def has_change_permission(self, request, obj=None):
        if obj is not None and (
            obj.status != EntryStatus.DRAFT or obj.created_by_id != request.user.pk
        ):
            return False
        perm = "finance.change_journalentry" if obj is not None else "finance.add_journalentry"
        return request.user.has_perm(perm)

    has_add_permission = has_change_permission

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("finance.view_journalentry")


class JournalEntryForm(forms.ModelForm):
    class Meta:
        model = JournalEntry
        fields = ["entry_date", "description", "reference"]


@admin.register(JournalEntry)
class JournalEntryAdmin(ViewOnlyHistoryAdmin):
    form = JournalEntryForm
    inlines = [JournalLineInline]
    list_display = [
        "__str__",
        "entry_date",
        "description",
        "status",
        "source",
        "total",
        "created_by",
        "approved_by",
    ]
    list_filter = ["status", "source", "period"]
    search_fields = ["description", "reference", "number"]
    date_hierarchy = "entry_date"
    list_select_related = ["created_by", "approved_by", "period"]
    readonly_fields = [
        "status",
        "display_number",
        "period",
        "source",
        "reversal_of",
        "reversed_by_display",
        "created_by",
        "created_at",
        "submitted_by",
        "submitted_at",
        "approved_by",
        "approved_at",
        "posted_by",
        "posted_at",
    ]
    actions = [
        "submit_entries",
        "approve_entries",
        "post_entries",
        "reject_entries",
        "reverse_entries",
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                debit_total=Sum("lines__amount", filter=Q(lines__side=Side.DEBIT)),
                currency_count=Count("lines__currency", distinct=True),
                first_currency=Min("lines__currency"),
            )
        )

    @admin.display(description="Reversed by")
    def reversed_by_display(self, entry) -> str:
        reversal = JournalEntry.objects.filter(reversal_of=entry).first()
        return str(reversal) if reversal else "-"

    @admin.display(description="Amount", ordering="debit_total")
    def total(self, entry) -> str:
        if entry.currency_count != 1:
            return "multi-currency" if entry.currency_count else "-"
        return money.format_amount(entry.debit_total, entry.first_currency)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.number is not None:
            # A number alone does not say whether the entry stands or was reversed.
            context["subtitle"] = f"{obj} ({obj.get_status_display()})"
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _editable(self, request, obj) -> bool:
        # Posted, pending and reversed entries are read-only; a draft belongs to its creator.
        return obj is None or (
            obj.status == EntryStatus.DRAFT and obj.created_by_id == request.user.pk
        )

    def has_change_permission(self, request, obj=None):
        return self._editable(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(request, obj) and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        pass  # written with its lines by the service, in save_related

    def save_related(self, request, form, formsets, change):
        lines = getattr(formsets[0], "line_data", None)
        data = form.cleaned_data
        if change:
            entry = services.journal_entry_update(
                entry=form.instance,
                actor=request.user,
                entry_date=data["entry_date"],
                description=data["description"],
                reference=data.get("reference", ""),
                lines=lines,
            )
        else:
            entry = services.journal_entry_create(
                entry_date=data["entry_date"],
                description=data["description"],
                reference=data.get("reference", ""),
                lines=lines or [],
                created_by=request.user,
            )
        form.instance.pk = entry.pk
        form.instance.status = entry.status
        for formset in formsets:  # the service wrote the lines; the change message reads these
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def delete_model(self, request, obj):
        services.journal_entry_delete(entry=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for entry in queryset:
            services.journal_entry_delete(entry=entry, actor=request.user)

    def _run(self, request, queryset, service, done: str) -> None:
        for entry in queryset:
            try:
                result = service(entry=entry, actor=request.user)
                self.message_user(request, f"{entry}: {done} ({result}).")
            except DomainError as exc:
                _report(self, request, entry, exc)

    def has_submit_permission(self, request):
        return request.user.has_perm("finance.submit_journalentry")

    def has_approve_permission(self, request):
        return request.user.has_perm("finance.approve_journalentry")

    def has_post_permission(self, request):
        return request.user.has_perm("finance.post_journalentry")

    def has_reverse_permission(self, request):
        return request.user.has_perm("finance.reverse_journalentry")

    @admin.action(description="Submit for approval", permissions=["submit"])
    def submit_entries(self, request, queryset):
        self._run(request, queryset, services.journal_entry_submit, "submitted")

    @admin.action(description="Approve and post", permissions=["approve"])
    def approve_entries(self, request, queryset):
        self._run(request, queryset, services.journal_entry_approve, "approved and posted")

    @admin.action(description="Post (no approval needed)", permissions=["post"])
    def post_entries(self, request, queryset):
        self._run(request, queryset, services.journal_entry_post, "posted")

    @admin.action(description="Send back to draft", permissions=["approve"])
    def reject_entries(self, request, queryset):
        self._run(request, queryset, services.journal_entry_reject, "sent back")

    @admin.action(description="Reverse (posts a reversal dated today)", permissions=["reverse"])
    def reverse_entries(self, request, queryset):
        self._run(request, queryset, services.journal_entry_reverse, "reversed by")
