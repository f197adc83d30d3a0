"""The API schema and its docs pages (Swagger UI, ReDoc), public or staff-only by API_DOCS_PUBLIC.

Staff-only (the default with DEBUG off): the schema answers an anonymous client 401 (with a
token scheme to offer) in the API's error shape, and a signed-in non-staff user 403; the HTML
pages send an anonymous visitor to the admin login and back, and refuse a non-staff user 403.
The schema names every endpoint and field: not a secret, but a map an attacker need not be
handed. Public: everyone reads all three (local use, or a deployment that publishes its API).
"""

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import BasePermission


def docs_allowed(user) -> bool:
    """Whether `user` may read the schema and the docs under the current setting."""
    if settings.API_DOCS_PUBLIC:
        return True
    return bool(user is not None and user.is_active and user.is_staff)


class ApiDocsAccess(BasePermission):
    def has_permission(self, request, view) -> bool:
        return docs_allowed(request.user)


class SchemaView(SpectacularAPIView):
    permission_classes = [ApiDocsAccess]


class _DocsPage:
    """An HTML docs page: the login page for an anonymous visitor (not DRF's JSON 401)."""

    def dispatch(self, request, *args, **kwargs):
        if not docs_allowed(request.user):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class SwaggerView(_DocsPage, SpectacularSwaggerView):
    permission_classes = [ApiDocsAccess]


class RedocView(_DocsPage, SpectacularRedocView):
    permission_classes = [ApiDocsAccess]
