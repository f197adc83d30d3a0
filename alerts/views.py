"""The one-click acknowledge link sent in alert emails.

GET shows what will be acknowledged and a button (so that mail scanners that follow links do
not acknowledge anything); POST acknowledges. The signed token names one notification, its
alert and the alert's firing; it expires, works once, and not after the alert fired again.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.utils.html import escape
from django.views.decorators.http import require_http_methods

from alerts import selectors, services
from alerts.exceptions import AlertNotOpen
from config.errors import DomainError

# Its style from a static file: the Content Security Policy allows no inline style.
PAGE = """<!doctype html><html><head><title>Ledgerguard alert</title>
<link rel="stylesheet" href="{css}"></head><body>{body}</body></html>"""


def _page(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(
        PAGE.format(css=escape(static("ledgerguard/page.css")), body=body), status=status
    )


def _refused(exc: DomainError) -> HttpResponse:
    # 404 for a link we did not make, 410 for one that no longer acknowledges anything,
    # 409 for an alert that is already acknowledged or resolved.
    status = 409 if exc.code == AlertNotOpen.code else exc.http_status
    return _page(f"<h1>{escape(exc.message)}</h1><p>Nothing was changed.</p>", status=status)


@require_http_methods(["GET", "POST"])
def acknowledge(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "GET":
        try:
            alert = services.ack_link_check(token=token)
        except DomainError as exc:
            return _refused(exc)
        return _page(
            f"<h1>{escape(alert.title)}</h1><p>{escape(alert.severity)}, {escape(alert.state)}, "
            f"{alert.occurrences} occurrence(s).</p>"
            f'<form method="post"><input type="hidden" name="csrfmiddlewaretoken" '
            f'value="{get_token(request)}"><button type="submit">Acknowledge</button></form>'
        )
    try:
        alert = services.alert_acknowledge_by_token(token=token)
    except DomainError as exc:
        return _refused(exc)
    return _page(f"<h1>Acknowledged: {escape(alert.title)}</h1><p>Escalation has stopped.</p>")


def heartbeat(request: HttpRequest) -> JsonResponse:
    """For an outside monitor: 200 while the alert pipeline beats, 503 when it has stopped."""
    status = selectors.heartbeat_status()
    return JsonResponse(status, status=200 if status["ok"] else 503)
