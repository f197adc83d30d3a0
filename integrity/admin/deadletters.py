"""The dead-letter queue and the idempotency keys (read-only); retry and discard are actions
that go through integrity.services."""

from django.contrib import admin, messages

from config.admin_helpers import ReadOnlyAdminMixin, ReadOnlyTabularInline
from config.errors import DomainError
from integrity import services
from integrity.models import DeadLetter, DeadLetterEvent, IdempotencyKey


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: what clients sent with Idempotency-Key and what they were answered."""

    list_display = ["key", "user", "scope", "status", "response_status", "created_at", "expires_at"]
    list_filter = ["status", "response_status"]
    search_fields = ["key", "user__username", "scope"]


class DeadLetterEventInline(ReadOnlyTabularInline):
    model = DeadLetterEvent
    fields = ["at", "action", "actor", "note"]


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The dead-letter queue. Retry and discard go through integrity.services."""

    list_display = [
        "id",
        "operation",
        "kind",
        "status",
        "attempts",
        "max_attempts",
        "next_retry_at",
        "created_at",
        "short_error",
    ]
    list_filter = ["status", "kind", "operation"]
    search_fields = ["operation", "error", "idempotency_key"]
    readonly_fields = [
        "kind",
        "operation",
        "status",
        "payload",
        "idempotency_key",
        "error",
        "traceback",
        "attempts",
        "max_attempts",
        "next_retry_at",
        "last_attempt_at",
        "created_at",
        "resolved_at",
        "resolved_by",
        "discarded_at",
        "discarded_by",
        "discard_reason",
    ]
    inlines = [DeadLetterEventInline]
    actions = ["retry_letters", "discard_letters"]

    @admin.display(description="Error")
    def short_error(self, letter: DeadLetter) -> str:
        return letter.error[:80]

    def has_retry_permission(self, request):
        return request.user.has_perm("integrity.retry_deadletter")

    def has_discard_permission(self, request):
        return request.user.has_perm("integrity.discard_deadletter")

    @admin.action(description="Retry now", permissions=["retry"])
    def retry_letters(self, request, queryset):
        for letter in queryset:
            try:
                result = services.deadletter_retry(dead_letter=letter, actor=request.user)
                level = messages.SUCCESS if result.status == "resolved" else messages.WARNING
                self.message_user(request, f"#{letter.pk}: {result.status}.", level=level)
            except DomainError as exc:
                self.message_user(
                    request, f"#{letter.pk}: [{exc.code}] {exc.message}", level=messages.ERROR
                )

    @admin.action(description="Discard (reason: discarded from the admin)", permissions=["discard"])
    def discard_letters(self, request, queryset):
        for letter in queryset:
            try:
                services.deadletter_discard(
                    dead_letter=letter,
                    actor=request.user,
                    reason=f"Discarded from the admin by {request.user}",
                )
                self.message_user(request, f"#{letter.pk}: discarded.")
            except DomainError as exc:
                self.message_user(
                    request, f"#{letter.pk}: [{exc.code}] {exc.message}", level=messages.ERROR
                )
