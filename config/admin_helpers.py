"""Small admin building blocks shared by the apps' admin modules."""

from django.contrib import admin


class ReadOnlyTabularInline(admin.TabularInline):
    """A history shown on its parent's page: nothing to add, change or delete."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdminMixin:
    """Records that change only through services (or never): viewable, with actions, but no
    add, change or delete form."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
