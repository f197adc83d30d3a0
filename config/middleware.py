"""Request plumbing: refuses malformed headers, binds the request context."""

import ipaddress
import re
import uuid

from django.conf import settings
from django.http import JsonResponse
from django.utils.cache import patch_cache_control

from config import context
from config.errors import error_body

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def client_ip(request) -> str | None:
    """The client's address: behind NUM_PROXIES trusted proxies, from X-Forwarded-For the way
    DRF's throttles read it; otherwise the connection's. The one rule for the audit trail, the
    login lockout (AXES_CLIENT_IP_CALLABLE) and the repeat counters. An entry that is not an
    address (a client's own junk, when NUM_PROXIES counts more proxies than there are) is not
    taken: the connection's address is."""
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
        if addresses:
            candidate = addresses[-min(proxies, len(addresses))]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                pass
    return request.META.get("REMOTE_ADDR")


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        ctx = context.RequestContext(
            request_id=request_id,
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", "")[:500],
            request=request,
        )
        request.request_id = request_id
        with context.bind(ctx):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


# Header values may hold tabs (RFC 9110) but no other control character. A NUL reaches the
# database through stored user agents, which PostgreSQL refuses.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class HeaderSanityMiddleware:
    """Refuses a request whose header values hold control characters: 400 in the error shape,
    before any other middleware, authentication or audit code reads them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        bad = sorted(
            name.removeprefix("HTTP_").replace("_", "-").title()
            for name, value in request.META.items()
            if (name.startswith("HTTP_") or name in ("CONTENT_TYPE", "CONTENT_LENGTH"))
            and isinstance(value, str)
            and CONTROL_CHARACTERS.search(value)
        )
        if bad:
            return JsonResponse(
                error_body(
                    "header.invalid",
                    "A header value holds control characters; the request was refused.",
                    {"headers": bad},
                ),
                status=400,
            )
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """Headers Django's SecurityMiddleware does not send: Permissions-Policy (browser features
    no page uses, PERMISSIONS_POLICY), Reporting-Endpoints (where the CSP's `report-to` group
    sends reports), and `Cache-Control: no-store` on every /api/ answer, errors, 401, 403 and
    429 included: a shared or browser cache must never keep an API answer for the next user."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.PERMISSIONS_POLICY:
            response.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        if settings.CSP_REPORT_ENDPOINT:
            response.setdefault("Reporting-Endpoints", f'csp="{settings.CSP_REPORT_ENDPOINT}"')
        if request.path_info.startswith("/api/"):
            patch_cache_control(response, no_store=True)
        return response
