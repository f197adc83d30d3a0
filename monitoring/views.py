"""/metrics: the Prometheus exposition, for configured addresses or a bearer token only.

MONITORING_METRICS_NETWORKS (default loopback: a Prometheus on the same host works out of the
box) lists the client networks let in; MONITORING_METRICS_TOKEN, when set, lets in any client
that sends it as `Authorization: Bearer <token>`. Anyone else gets a 404 (the endpoint does
not announce itself)."""

import hmac
import ipaddress

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from config.middleware import client_ip
from monitoring import prometheus


def _allowed(request: HttpRequest) -> bool:
    token = settings.MONITORING_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
    address = client_ip(request)
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.MONITORING_METRICS_NETWORKS)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        raise Http404
    body, content_type = prometheus.exposition()
    return HttpResponse(body, content_type=content_type)
