"""Every 403 answer (a missing permission in the API or the admin, a CSRF failure) is recorded.

Placed right after config.middleware.RequestContextMiddleware: the request context (user, IP,
request id) is bound, and every 403 produced further in passes back through here.
"""

import logging

from django.db import DatabaseError

from audit.services import REDACTED, SENSITIVE, audit_record_repeatable
from config import context

logger = logging.getLogger("ledgerguard.audit")


def _safe_path(request) -> str:
    """The path, without the values of URL parameters that are secrets (an ack link's token)."""
    path = request.path
    match = getattr(request, "resolver_match", None)
    for name, value in match.kwargs.items() if match else ():
        if value and SENSITIVE.search(name.lower()):
            path = path.replace(str(value), REDACTED)
    return path[:500]


class AuditDenialMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 403:
            metadata = {"method": request.method, "path": _safe_path(request), "status": 403}
            ctx = context.current()
            user = ctx.user if ctx else None
            try:
                audit_record_repeatable(
                    action="access.denied",
                    reason="access.denied",
                    who=f"#{user.pk}" if user is not None else "anonymous",
                    metadata=metadata,
                )
            except DatabaseError:
                # The request is refused either way; a 500 in place of the 403 would help no one.
                logger.exception("Could not record a permission denial: %s", metadata)
        return response
