from django.contrib import admin

from integrity.models import IdempotencyKey


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin):
    """Read-only: what clients sent with Idempotency-Key and what they were answered."""

    list_display = ["key", "user", "scope", "status", "response_status", "created_at",
                    "expires_at"]  # fmt: skip
    list_filter = ["status", "response_status"]
    search_fields = ["key", "user__username", "scope"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
