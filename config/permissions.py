from rest_framework import permissions


class ModelPermissions(permissions.DjangoModelPermissions):
    """Django model permissions, with `view` required to read and per-action extras.

    A view may declare `action_permissions = {"approve": ["finance.approve_journalentry"]}`;
    those replace the method-based permissions for that action.
    """

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": [],
    }

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        extra = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if extra is not None:
            return request.user.has_perms(extra)
        if getattr(view, "queryset", None) is None and not hasattr(view, "get_queryset"):
            return True
        return super().has_permission(request, view)


def perms_required(*perms: str) -> type[permissions.BasePermission]:
    """A permission class for views without a model queryset: the user must hold `perms`."""

    class PermsRequired(permissions.BasePermission):
        def has_permission(self, request, view):
            user = request.user
            return bool(user and user.is_authenticated and user.has_perms(perms))

    PermsRequired.__name__ = f"PermsRequired({', '.join(perms)})"
    return PermsRequired
