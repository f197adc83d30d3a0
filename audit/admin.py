"""The audit trail in the admin: read-only for everyone, superusers included.

The event list carries a chain status panel (head, last verification, last checkpoint) and,
for holders of audit.verify_auditevent, a "Verify now" button. Everything an event holds is
hostile input (user agents, object names, changed values): it is escaped on the way out.
"""

import json
from typing import Any
from urllib.parse import urlencode

from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from audit import dashboard, selectors, services
from audit.actions import catalogue
from audit.models import (
    AuditEvent,
    Checkpoint,
    CheckpointPublication,
    Verification,
    VerificationStatus,
)
from audit.services import actor_repr
from config import dashboards
from config.admin_helpers import ReadOnlyAdminMixin

EMPTY = "-"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _cell(value: Any):
    """One before/after value: text as it is, anything else as JSON (escaped by the caller)."""
    if value is None:
        return EMPTY
    if isinstance(value, str):
        return value
    return format_html("<pre>{}</pre>", _pretty(value))


def changes_table(changes: Any):
    """{field: [before, after]} as a table; anything else (a changed row) as plain JSON."""
    if not changes:
        return EMPTY
    if not isinstance(changes, dict):
        return format_html("<pre>{}</pre>", _pretty(changes))
    rows = []
    for field, values in sorted(changes.items()):
        if isinstance(values, list) and len(values) == 2:
            before, after = values
        else:
            before, after = None, values
        rows.append((field, _cell(before), _cell(after)))
    return format_html(
        '<table class="audit-changes"><thead><tr><th scope="col">Field</th>'
        '<th scope="col">Before</th><th scope="col">After</th></tr></thead>'
        "<tbody>{}</tbody></table>",
        format_html_join("", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", rows),
    )


def _changelist(**params: Any) -> str:
    return reverse("admin:audit_auditevent_changelist") + "?" + urlencode(params)


class ActionFilter(admin.SimpleListFilter):
    """Choices from the catalogue (audit/receivers.py), not a DISTINCT scan of the table."""

    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(action, action) for action in catalogue()]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


class ObjectTypeFilter(admin.SimpleListFilter):
    """Choices from the installed models, not a DISTINCT scan of the table."""

    title = "object type"
    parameter_name = "object_type"

    def lookups(self, request, model_admin):
        labels = sorted(m._meta.label_lower for m in apps.get_models())
        return [
            (label, label) for label in labels if not label.split(".")[1].startswith("historical")
        ]

    def queryset(self, request, queryset):
        return queryset.filter(object_type=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "occurred_at",
        "actor_repr",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "ip",
        "request_id",
    ]
    list_display_links = ["id", "action"]
    search_fields = [
        "actor_repr",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "request_id",
    ]
    list_filter = [ActionFilter, ObjectTypeFilter, "occurred_at"]
    # No date_hierarchy, and no count of the whole table under a filter: both scan it.
    show_full_result_count = False
    list_per_page = 100
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "occurred_at",
                    "action",
                    "actor_repr",
                    "actor_activity",
                    "ip",
                    "user_agent",
                    "request_id",
                ]
            },
        ),
        ("Object", {"fields": ["object_type", "object_id", "object_repr", "object_timeline"]}),
        ("Changes", {"fields": ["changes_display"]}),
        ("Metadata", {"fields": ["metadata_display"]}),
        ("Hash chain", {"fields": ["schema_version", "prev_hash", "hash"]}),
    ]
    readonly_fields = [
        "id",
        "occurred_at",
        "action",
        "actor_repr",
        "actor_activity",
        "ip",
        "user_agent",
        "request_id",
        "object_type",
        "object_id",
        "object_repr",
        "object_timeline",
        "changes_display",
        "metadata_display",
        "schema_version",
        "prev_hash",
        "hash",
    ]

    @admin.display(description="Changes (before / after)")
    def changes_display(self, event: AuditEvent):
        return changes_table(event.changes)

    @admin.display(description="Metadata")
    def metadata_display(self, event: AuditEvent):
        return format_html("<pre>{}</pre>", _pretty(event.metadata)) if event.metadata else EMPTY

    @admin.display(description="Timeline")
    def object_timeline(self, event: AuditEvent):
        if not event.object_type:
            return EMPTY
        url = _changelist(object_type=event.object_type, object_id=event.object_id)
        return format_html('<a href="{}">Timeline of this object</a>', url)

    @admin.display(description="Actor's activity")
    def actor_activity(self, event: AuditEvent):
        if event.actor_id is None:
            return EMPTY
        return format_html(
            '<a href="{}">Activity of this actor (user #{})</a>',
            _changelist(actor=event.actor_id),
            event.actor_id,
        )

    # The chain status panel and "Verify now" -----------------------------------------------

    def has_verify_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("audit.verify_auditevent")

    def get_urls(self):
        verify = path(
            "verify/", self.admin_site.admin_view(self.verify_view), name="audit_auditevent_verify"
        )
        return [verify, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "chain_status": selectors.audit_chain_status(),
            "can_verify": self.has_verify_permission(request),
        }
        return super().changelist_view(request, extra_context=extra_context)

    @method_decorator(require_POST)
    def verify_view(self, request):
        """Verify the whole chain now, or queue it when it is long (AUDIT_VERIFY_SYNC_LIMIT)."""
        if not self.has_verify_permission(request):
            raise PermissionDenied
        result = services.chain_verify_or_queue(triggered_by=f"admin: {actor_repr(request.user)}")
        if not isinstance(result, Verification):
            self.message_user(
                request,
                "The chain is long: its verification was queued for a "
                "worker; the result will show here when it is done.",
            )
        elif result.status == VerificationStatus.OK:
            self.message_user(
                request,
                f"Chain verified: {result.events_checked} events and "
                f"{result.checkpoints_checked} checkpoints are intact.",
                level=messages.SUCCESS,
            )
        else:
            where = f" at event #{result.first_bad_id}" if result.first_bad_id else ""
            self.message_user(
                request,
                f"{result.get_status_display()}{where}: "
                f"{len(result.problems)} problem(s); see verification "
                f"#{result.pk}.",
                level=messages.ERROR,
            )
        return HttpResponseRedirect(reverse("admin:audit_auditevent_changelist"))


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["sequence", "created_at", "short_hash", "key_id", "location", "witnessed"]
    search_fields = ["hash", "key_id"]
    readonly_fields = [
        "sequence",
        "hash",
        "created_at",
        "key_id",
        "signature",
        "location",
        "witness_copies",
    ]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest):
        sent = Q(publications__status=CheckpointPublication.Status.SENT)
        witnessed = Max("publications__sent_at", filter=sent)
        return super().get_queryset(request).annotate(witnessed_at=witnessed)

    @admin.display(description="Hash", ordering="hash")
    def short_hash(self, checkpoint: Checkpoint) -> str:
        return checkpoint.hash[:16]

    @admin.display(description="Witnessed", ordering="witnessed_at")
    def witnessed(self, checkpoint: Checkpoint):
        return getattr(checkpoint, "witnessed_at", None) or EMPTY  # annotated by get_queryset

    @admin.display(description="Copies at the witness")
    def witness_copies(self, checkpoint: Checkpoint):
        rows = [
            (
                p.get_channel_display(),
                p.destination,
                p.get_status_display(),
                p.attempts,
                f"{p.sent_at:%Y-%m-%d %H:%M:%S} UTC" if p.sent_at else EMPTY,
                p.last_error or EMPTY,
            )
            for p in checkpoint.publications.order_by("channel")
        ]
        if not rows:
            return "none: no witness was configured (docs/audit.md, The checkpoint witness)"
        return format_html_join(
            "", "<p>{} to {}: {} after {} attempt(s), sent {}; last error: {}</p>", rows
        )


VERIFICATION_FIELDS = (
    "status",
    "first_bad_event",
    "problems_display",
    "started_at",
    "finished_at",
    "triggered_by",
    "from_id",
    "to_id",
    "events_checked",
    "checkpoints_checked",
)


@admin.register(Verification)
class VerificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "started_at",
        "status",
        "first_bad_id",
        "events_checked",
        "checkpoints_checked",
        "triggered_by",
        "from_id",
        "to_id",
    ]
    list_filter = ["status", "started_at"]
    search_fields = ["triggered_by"]
    fields = VERIFICATION_FIELDS
    readonly_fields = VERIFICATION_FIELDS
    show_full_result_count = False

    @admin.display(description="First bad event")
    def first_bad_event(self, verification: Verification):
        if verification.first_bad_id is None:
            return EMPTY
        url = reverse("admin:audit_auditevent_change", args=[verification.first_bad_id])
        return format_html('<a href="{}">#{}</a>', url, verification.first_bad_id)

    @admin.display(description="Problems")
    def problems_display(self, verification: Verification):
        if not verification.problems:
            return EMPTY
        return format_html("<pre>{}</pre>", _pretty(verification.problems))


# The console's Audit page (audit/dashboard.py) and its Overview tile.
dashboards.register(dashboard.DASHBOARD)
