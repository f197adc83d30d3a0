"""Journal entries: drafts edited with their lines, submitted, approved (maker-checker),
posted and reversed through the services; posted entries are read-only."""

from django import forms
from django.contrib import admin
from django.db.models import Count, Min, Q, Sum
from django.forms.models import BaseInlineFormSet

from config.admin_helpers import ViewOnlyHistoryAdmin
from config.errors import DomainError
from finance import money, rules, services
from finance.admin.common import as_validation_error, report
from finance.exceptions import RuleViolation
from finance.models import EntryStatus, JournalEntry, JournalLine, Side


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
            raise as_validation_error(exc) from exc
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
                report(self, request, entry, exc)

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
