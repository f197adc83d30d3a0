"""Request rates per client, counted in the shared cache (CACHES: the database by default), so
that every process and host behind the load balancer counts the same requests.

Three scopes, rates from THROTTLE_*_RATE ("N/s|min|hour|day", empty: off):
- `anon`: API clients that are not authenticated, by address;
- `user`: authenticated API clients, by user;
- `login`: password logins, by address: POST /api/v1/auth/token/ and the admin's login POST
  share one budget, so that guessing through both doors gets no more tries. django-axes'
  lockout (per username and address) still counts failures on top of it.

Rates are read from the settings at each request (DRF's own classes read them once, at import),
and a client's address is the project's one rule (config.middleware.client_ip).
"""

import math
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from config.middleware import client_ip


def _rate(scope: str) -> str | None:
    return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(scope) or None


class _SettingsRate:
    scope: str

    def get_rate(self) -> str | None:
        return _rate(self.scope)

    def get_ident(self, request: Any) -> str:
        return client_ip(request) or "unknown"


class AnonThrottle(_SettingsRate, AnonRateThrottle):
    scope = "anon"


class UserThrottle(_SettingsRate, UserRateThrottle):
    scope = "user"


class LoginThrottle(_SettingsRate, SimpleRateThrottle):
    scope = "login"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def retry_after(wait: float | None) -> int:
    """Whole seconds, at least one: Retry-After: 0 would invite an immediate retry."""
    return max(1, math.ceil(wait or 0))


def admin_login_throttled(request: HttpRequest) -> HttpResponse | None:
    """The admin login POST counted in the `login` scope: None when allowed, else the 429
    page with Retry-After (in the lockout page's form)."""
    if request.method != "POST":
        return None
    throttle = LoginThrottle()
    if throttle.allow_request(request, None):  # type: ignore[arg-type] # no DRF view
        return None
    seconds = retry_after(throttle.wait())
    message = f"Too many login attempts from your address. Try again in {seconds} seconds."
    response = TemplateResponse(
        request, "registration/locked_out.html", {"message": message}, status=429
    ).render()
    response["Retry-After"] = str(seconds)
    return response
