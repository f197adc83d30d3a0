from django.contrib import admin

from config.models import ApiToken
from config.tokens import api_token_revoke


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created by their owner (API or `manage.py create_api_token`); here they are
    seen and revoked. The secret itself is never stored, so it cannot be shown."""

    list_display = ["name", "prefix", "user", "created_at", "expires_at", "revoked_at",
                    "last_used_at"]  # fmt: skip
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["user", "name", "prefix", "created_at", "expires_at", "revoked_at",
                       "last_used_at"]  # fmt: skip
    exclude = ["digest"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row stays as a record

    def has_revoke_permission(self, request):
        return request.user.has_perm("config.delete_apitoken")

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke(self, request, queryset):
        for token in queryset:
            api_token_revoke(token=token)
        self.message_user(request, f"Revoked {queryset.count()} token(s).")
