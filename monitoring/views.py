"""/metrics: the Prometheus exposition, for configured addresses or a bearer token only.

MONITORING_METRICS_NETWORKS (default loopback: a Prometheus on the same host works out of the
box) lists the client networks let in; MONITORING_METRICS_TOKEN, when set, lets in any client
that sends it as `Authorization: Bearer <token>`. A request that came through a proxy
(X-Forwarded-For) while no proxy is trusted (NUM_PROXIES 0) is let in by the token only: its
address is the proxy's. Anyone else gets a 404 (the endpoint does not announce itself)."""

import hmac
import ipaddress

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from config.middleware import client_ip
from monitoring import prometheus


def _allowed(request: HttpRequest) -> bool:
    token = settings.MONITORING_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
    if "HTTP_X_FORWARDED_FOR" in request.META and not settings.REST_FRAMEWORK.get("NUM_PROXIES"):
        # Proxied, with no proxy trusted to name the client: the connection's address is the
        # proxy's (often loopback), not the client's. Only the token lets such a request in.
        return False
    address = client_ip(request)
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 from a dual-stack socket is 127.0.0.1
    return any(ip in network for network in settings.MONITORING_METRICS_NETWORKS)


@csrf_exempt  # read-only: any other method gets its 405, not the CSRF check's 403 page
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        raise Http404  # whatever the method: the endpoint does not announce itself
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    body, content_type = prometheus.exposition()
    return HttpResponse(body, content_type=content_type)
