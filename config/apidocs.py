"""The API schema and its docs pages (Swagger UI, ReDoc), public or staff-only by API_DOCS_PUBLIC.

Staff-only (the default with DEBUG off): the schema answers an anonymous client 401 (with a
token scheme to offer) in the API's error shape, and a signed-in non-staff user 403; the HTML
pages send an anonymous visitor to the admin login and back, and refuse a non-staff user 403.
The schema names every endpoint and field: not a secret, but a map an attacker need not be
handed. Public: everyone reads all three (local use, or a deployment that publishes its API).
"""

from csp.constants import NONCE
from csp.decorators import csp_update
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer


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

    def handle_exception(self, exc):
        """A refusal in the API's JSON error shape, not rendered as an OpenAPI document."""
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


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


# ReDoc styles itself with styled-components, which writes <style> elements: they carry the
# page's nonce (its template passes it to Redoc.init), so this page alone adds the nonce to
# style-src. Two style elements it writes while its bundle loads, before it can know the nonce,
# are allowed by their hashes (an empty one, and its CSS loader's): a new ReDoc version that
# writes others fails tests/browser, which prints the new hash. Style attributes stay refused.
REDOC_STYLE_HASHES = [
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
]


@method_decorator(csp_update({"style-src": [NONCE, *REDOC_STYLE_HASHES]}), name="dispatch")
class RedocView(_DocsPage, SpectacularRedocView):
    permission_classes = [ApiDocsAccess]
