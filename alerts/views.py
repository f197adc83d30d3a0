"""The one-click acknowledge link sent in alert emails.

GET shows what will be acknowledged and a button (so that mail scanners that follow links do
not acknowledge anything); POST acknowledges. The signed token names one alert and expires.
"""

from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.utils.html import escape
from django.views.decorators.http import require_http_methods

from alerts import services
from alerts.models import Alert
from config.exceptions import DomainError

PAGE = """<!doctype html><html><head><title>Ledgerguard alert</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">{body}</body></html>"""


def _page(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(PAGE.format(body=body), status=status)


@require_http_methods(["GET", "POST"])
def acknowledge(request, token: str):
    if request.method == "GET":
        from django.core import signing

        try:
            data = signing.loads(token, salt=services.ACK_SALT)
            alert = Alert.objects.get(pk=data["alert"])
        except (signing.BadSignature, Alert.DoesNotExist, KeyError, TypeError):
            return _page("<h1>This acknowledge link is not valid.</h1>", status=404)
        return _page(
            f"<h1>{escape(alert.title)}</h1><p>{escape(alert.severity)}, {escape(alert.state)}, "
            f"{alert.occurrences} occurrence(s).</p>"
            f'<form method="post"><input type="hidden" name="csrfmiddlewaretoken" '
            f'value="{get_token(request)}"><button type="submit">Acknowledge</button></form>'
        )
    try:
        alert = services.alert_acknowledge_by_token(token=token)
    except DomainError as exc:
        status = 409 if exc.code == "alert.not_open" else 404
        return _page(f"<h1>{escape(exc.message)}</h1>", status=status)
    return _page(f"<h1>Acknowledged: {escape(alert.title)}</h1><p>Escalation has stopped.</p>")


def heartbeat(request):
    """For an outside monitor: 200 while the alert pipeline beats, 503 when it has stopped."""
    from django.http import JsonResponse

    status = services.heartbeat_status()
    return JsonResponse(status, status=200 if status["ok"] else 503)
