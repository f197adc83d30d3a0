import hashlib
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from alerts import dashboard, services
from alerts.models import (
    Alert,
    AlertEvent,
    Channel,
    Delivery,
    EscalationPolicy,
    EscalationStep,
    Route,
    Silence,
    Target,
)
from config import dashboards
from config.admin_helpers import (
    AuditedAdminMixin,
    ReadOnlyAdminMixin,
    ReadOnlyTabularInline,
    ViewOnlyHistoryAdmin,
)
from config.errors import DomainError


class DeliveryInline(ReadOnlyTabularInline):  # defined before AlertAdmin needs it
    model = Delivery
    fields = [
        "created_at",
        "kind",
        "target",
        "channel",
        "step",
        "round",
        "status",
        "attempts",
        "last_error",
        "sent_at",
        "ack_used_at",
    ]


class AlertEventInline(ReadOnlyTabularInline):
    model = AlertEvent
    fields = ["at", "kind", "actor", "note"]


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"
    SPANS = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}

    def lookups(self, request, model_admin):
        return [
            ("1h", "Raised in the last hour"),
            ("1d", "Last day"),
            ("7d", "Last week"),
            ("old", "Older than a week"),
        ]

    def queryset(self, request, queryset):
        span = self.SPANS.get(self.value() or "")
        if span is not None:
            return queryset.filter(first_seen__gte=timezone.now() - span)
        if self.value() == "old":
            return queryset.filter(first_seen__lt=timezone.now() - self.SPANS["7d"])
        return queryset


class OccurrenceFilter(admin.SimpleListFilter):
    title = "occurrences"
    parameter_name = "occurrences"

    def lookups(self, request, model_admin):
        return [("1", "Once"), ("2-10", "2 to 10"), ("11+", "More than 10")]

    def queryset(self, request, queryset):
        return {
            "1": queryset.filter(occurrences=1),
            "2-10": queryset.filter(occurrences__range=(2, 10)),
            "11+": queryset.filter(occurrences__gt=10),
        }.get(self.value() or "", queryset)


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Alerts: state, severity, source, age; acknowledge and resolve go through the services."""

    list_display = [
        "title",
        "severity",
        "state",
        "source",
        "key",
        "occurrences",
        "age",
        "last_seen",
        "acknowledged_by",
    ]
    list_filter = ["state", "severity", "source", AgeFilter, OccurrenceFilter]
    search_fields = ["title", "source", "key"]
    readonly_fields = [
        "source",
        "key",
        "severity",
        "title",
        "details",
        "state",
        "occurrences",
        "firing",
        "first_seen",
        "last_seen",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "resolved_by",
    ]
    inlines = [AlertEventInline, DeliveryInline]
    actions = ["acknowledge", "resolve", "silence_hour"]

    @admin.display(description="Age", ordering="first_seen")
    def age(self, alert: Alert) -> str:
        minutes = int((timezone.now() - alert.first_seen).total_seconds() // 60)
        return (
            f"{minutes // 1440}d {minutes // 60 % 24}h"
            if minutes >= 1440
            else (f"{minutes // 60}h {minutes % 60}m")
        )

    def has_acknowledge_permission(self, request):
        return request.user.has_perm("alerts.acknowledge_alert")

    def has_resolve_permission(self, request):
        return request.user.has_perm("alerts.resolve_alert")

    def _apply(self, request, queryset, service, done: str) -> None:
        for alert in queryset:
            try:
                service(alert=alert, actor=request.user)
                self.message_user(request, f"{alert.title}: {done}.")
            except DomainError as exc:
                self.message_user(
                    request, f"{alert.title}: [{exc.code}] {exc.message}", level=messages.ERROR
                )

    @admin.action(description="Acknowledge", permissions=["acknowledge"])
    def acknowledge(self, request, queryset):
        self._apply(request, queryset, services.alert_acknowledge, "acknowledged")

    def has_silence_permission(self, request):
        return request.user.has_perm("alerts.add_silence")

    @admin.action(description="Silence for 1 hour", permissions=["silence"])
    def silence_hour(self, request, queryset):
        for alert in queryset:
            silence = services.silence_create(
                actor=request.user,
                reason=f"Silenced from the admin by {request.user}",
                source=alert.source,
                key_pattern=alert.key,
                severity=alert.severity,
                ends_at=timezone.now() + timedelta(hours=1),
            )
            note = " (needs a second operator's approval)" if silence.needs_approval else ""
            self.message_user(request, f"{alert.title}: silenced for an hour{note}.")

    @admin.action(description="Resolve", permissions=["resolve"])
    def resolve(self, request, queryset):
        self._apply(request, queryset, services.alert_resolve, "resolved")


# Alerting configuration has no services: the audited admin records every change.


class TargetForm(forms.ModelForm):
    class Meta:
        model = Target
        fields = "__all__"  # noqa: DJ007 - the admin's own field list decides what is shown

    def clean(self):
        data = super().clean() or {}
        try:
            services.target_check(channel=data.get("channel", ""), address=data.get("address", ""))
        except DomainError as exc:
            self.add_error("address", f"{exc.message} ({exc.code})")
        return data


@admin.register(Target)
class TargetAdmin(AuditedAdminMixin, ViewOnlyHistoryAdmin):
    form = TargetForm
    list_display = ["name", "channel", "address", "fallback", "is_active"]
    list_filter = ["channel", "is_active"]
    search_fields = ["name", "address"]

    def audit_state(self, obj):
        # A webhook URL often is the credential (Slack, Teams): the trail keeps a fingerprint,
        # enough to see that it changed. Email addresses and phone numbers stay readable.
        state = super().audit_state(obj)
        if obj.channel == Channel.WEBHOOK and state.get("address"):
            digest = hashlib.sha256(state["address"].encode()).hexdigest()[:12]
            state["address"] = f"[webhook URL sha256:{digest}]"
        return state


class EscalationStepInline(admin.TabularInline):
    model = EscalationStep
    fields = ["position", "delay_minutes", "targets"]
    filter_horizontal = ["targets"]
    extra = 1


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(AuditedAdminMixin, ViewOnlyHistoryAdmin):
    list_display = ["name", "repeat_last_step", "ack_timeout_minutes"]
    inlines = [EscalationStepInline]


@admin.register(Route)
class RouteAdmin(AuditedAdminMixin, ViewOnlyHistoryAdmin):
    list_display = [
        "position",
        "name",
        "source",
        "key_pattern",
        "min_severity",
        "policy",
        "is_active",
    ]
    list_display_links = ["name"]
    list_editable = ["position", "is_active"]
    list_filter = ["is_active", "min_severity"]


@admin.register(Silence)
class SilenceAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """New silences go through silence_create (its own event); edits and deletes are audited
    by the mixin."""

    list_display = [
        "__str__",
        "source",
        "key_pattern",
        "severity",
        "starts_at",
        "ends_at",
        "weekdays",
        "needs_approval",
        "approved_by",
        "created_by",
    ]
    list_filter = ["needs_approval", "source"]
    readonly_fields = ["created_by", "created_at", "needs_approval", "approved_by", "approved_at"]
    actions = ["approve", "expire"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        # Once made, a silence's reach and time are fixed: widening one (any severity, any key,
        # until 2099) would bypass the second operator's approval that silence_create decided
        # on. Expire it and create another instead; only the reason can be corrected.
        return [f.name for f in obj._meta.concrete_fields if f.name not in ("id", "reason")]

    def save_model(self, request, obj, form, change):
        if change:  # the reason only (get_readonly_fields)
            super().save_model(request, obj, form, change)
            return
        data = {
            f: form.cleaned_data.get(f)
            for f in (
                "source",
                "key_pattern",
                "severity",
                "starts_at",
                "weekdays",
                "window_start",
                "window_end",
            )
        }
        created = services.silence_create(
            actor=request.user,
            reason=form.cleaned_data["reason"],
            ends_at=form.cleaned_data["ends_at"],
            timezone_name=form.cleaned_data["timezone"],
            **data,
        )
        obj.pk = created.pk

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("alerts.change_silence")

    @admin.action(description="Approve (second operator)", permissions=["change"])
    def approve(self, request, queryset):
        for silence in queryset:
            try:
                services.silence_approve(silence=silence, actor=request.user)
                self.message_user(request, f"{silence}: approved.")
            except DomainError as exc:
                self.message_user(
                    request, f"{silence}: [{exc.code}] {exc.message}", level=messages.ERROR
                )

    @admin.action(description="Expire now", permissions=["change"])
    def expire(self, request, queryset):
        for silence in queryset:
            services.silence_expire(silence=silence, actor=request.user)
        self.message_user(request, "Expired.")


# The operations console's Alerts page and Overview tile (alerts/dashboard.py).
dashboards.register(dashboard.DASHBOARD)
