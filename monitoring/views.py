"""/metrics and /csp-report/.

/metrics: the Prometheus exposition, for configured addresses or a bearer token only.

MONITORING_METRICS_NETWORKS (default loopback: a Prometheus on the same host works out of the
box) lists the client networks let in; MONITORING_METRICS_TOKEN, when set, lets in any client
that sends it as `Authorization: Bearer <token>`. A request that came through a proxy
(X-Forwarded-For) while no proxy is trusted (NUM_PROXIES 0) is let in by the token only: its
address is the proxy's. Anyone else gets a 404 (the endpoint does not announce itself).

/csp-report/: where browsers report Content Security Policy violations (CSP_REPORT_ENDPOINT), into
the error log (monitoring.services.csp). Unauthenticated and CSRF-exempt, as browsers post
reports without either; bodies over CSP_REPORT_MAX_BYTES are refused unread (413), and any
other body that is not a report answers 400 in the error shape, never 500."""

import hmac
import ipaddress
import json

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from config.errors import error_body
from config.middleware import client_ip
from monitoring import prometheus
from monitoring.cspreports import ReportError, expected, parse_reports
from monitoring.services.csp import csp_violation_record

CSP_REPORT_TYPES = ("application/csp-report", "application/reports+json", "application/json")


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


def _refused(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


def _report_body(request: HttpRequest) -> bytes | JsonResponse:
    """The body, read up to the limit; a refusal when it is longer (declared or not)."""
    limit = settings.CSP_REPORT_MAX_BYTES
    too_large = _refused(413, "payload_too_large", f"A report is at most {limit} bytes.")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return too_large
    try:
        body = request.read(limit + 1)
    except OSError:
        return _refused(400, "csp_report.unreadable", "The body could not be read.")
    return too_large if len(body) > limit else body


@csrf_exempt  # browsers post reports without a CSRF token (or any credentials)
@never_cache
def csp_report(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _refused(405, "method_not_allowed", "Reports are POSTed.")
    if request.content_type not in CSP_REPORT_TYPES:
        return _refused(
            415,
            "unsupported_media_type",
            "Send application/csp-report or application/reports+json.",
        )
    body = _report_body(request)
    if isinstance(body, HttpResponse):
        return body
    try:
        violations = parse_reports(json.loads(body))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, ReportError, bad bytes
        message = str(exc) if isinstance(exc, ReportError) else "The body is not JSON."
        return _refused(400, "csp_report.invalid", message)
    csp_violation_record(violations=[v for v in violations if not expected(v)])
    return HttpResponse(status=204)
