"""The admin's second-factor pages: verify, enrol, recovery codes. Registered on the admin
site (config/admin.py), behind `admin_site.admin_view` (staff only, CSRF, never cached).

No inline script or style (the Content Security Policy allows neither): the QR code is an SVG
data URI in an <img>, and the pages' look is a static stylesheet."""

import base64

import segno
from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login
from django_otp.models import Device

from config.twofactor.services import (
    Verification,
    has_confirmed_device,
    otp_verify,
    recovery_codes_generate,
    recovery_codes_remaining,
    second_factor_passed,
    totp_device_confirm,
    totp_device_start,
)

# The authenticator this session is enrolling: its key is shown to this session only.
PENDING_DEVICE_SESSION_KEY = "ledgerguard_otp_pending_device"


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=64,
        strip=True,
        label="Code",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
    )


def _next_url(request: HttpRequest) -> str:
    """Where to go once verified: the page the user asked for, on this site only."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("admin:index")


def _redirect(page: str, request: HttpRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect(f"{reverse(page)}?{urlencode({'next': _next_url(request)})}")


def _context(request: HttpRequest, title: str, **extra: object) -> dict[str, object]:
    """The admin's look, without its app list: an unverified session sees no model names."""
    return {
        **admin.site.each_context(request),
        "available_apps": [],
        "is_nav_sidebar_enabled": False,
        "title": title,
        "next": _next_url(request),
        **extra,
    }


def _error(result: Verification) -> str:
    if result.reason == "throttled":
        return f"Too many wrong codes in a row. Try again in {result.retry_after} seconds."
    if result.reason == "malformed":
        return "Enter the 6-digit code from your authenticator app, or a recovery code."
    if result.reason == "no_device":
        return "You have no device for that kind of code."
    return "That code is not right."


def _mark_verified(request: HttpRequest, device: Device) -> None:
    # A new session key for the verified session: a key seen before it was verified (fixed by
    # an attacker, or logged somewhere) is worth nothing after.
    request.session.cycle_key()
    otp_login(request, device)
    second_factor_passed(request, request.user)


# A code not yet used up must not reach the error log or an error report (monitoring/capture.py).
@sensitive_post_parameters("code")
def verify(request: HttpRequest) -> HttpResponse:
    """After the password: a code from the authenticator app, or a recovery code."""
    user = request.user
    if user.is_verified():  # type: ignore[union-attr]
        return HttpResponseRedirect(_next_url(request))
    if not has_confirmed_device(user):
        return _redirect("admin:otp_enrol", request)
    form = CodeForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        result = otp_verify(user=user, code=form.cleaned_data["code"], purpose="admin")
        if result.device is not None:
            _mark_verified(request, result.device)
            return HttpResponseRedirect(_next_url(request))
        error = _error(result)
    context = _context(request, "Two-factor verification", form=form, error=error)
    return render(request, "admin/twofactor/verify.html", context, status=400 if error else 200)


@sensitive_post_parameters("code")
def enrol(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app: its key as a QR code and as text, confirmed by a code from
    the app; then the recovery codes, shown once. Adding or replacing an authenticator needs a
    verified session when the user has one already: a password alone never adds a device."""
    user = request.user
    if has_confirmed_device(user) and not user.is_verified():  # type: ignore[union-attr]
        return _redirect("admin:otp_verify", request)
    form = CodeForm(request.POST or None)
    error = ""
    pending_id = request.session.get(PENDING_DEVICE_SESSION_KEY)
    if request.method == "POST" and form.is_valid():
        result, codes = _confirm(user, form.cleaned_data["code"], pending_id)
        if result.device is not None:
            request.session.pop(PENDING_DEVICE_SESSION_KEY, None)
            _mark_verified(request, result.device)
            return _show_codes(request, codes)
        error = _error(result)
        if result.reason == "no_device":  # this session showed no key, or another replaced it
            error = "Add the key below to your app, then enter the code it shows."
    device = totp_device_start(user=user, pending_id=pending_id)
    request.session[PENDING_DEVICE_SESSION_KEY] = device.pk
    qr = segno.make(device.config_url, error="m")
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    context = _context(
        request,
        "Set up two-factor authentication",
        form=form,
        error=error,
        qr_data_uri=qr.svg_data_uri(scale=5, dark="#000000", light="#ffffff"),
        key_groups=[key[i : i + 4] for i in range(0, len(key), 4)],
    )
    return render(request, "admin/twofactor/enrol.html", context, status=400 if error else 200)


def _confirm(user, code: str, pending_id: int | None) -> tuple[Verification, list[str]]:
    """Only the key this session showed is confirmed, never another session's."""
    if pending_id is None:
        return Verification(None, "no_device"), []
    return totp_device_confirm(user=user, code=code, pending_id=pending_id)


def recovery_codes(request: HttpRequest) -> HttpResponse:
    """How many recovery codes are left; a POST replaces the set with new ones, shown once."""
    user = request.user
    if not user.is_verified():  # type: ignore[union-attr]
        page = "admin:otp_verify" if has_confirmed_device(user) else "admin:otp_enrol"
        return _redirect(page, request)
    if request.method == "POST":
        return _show_codes(request, recovery_codes_generate(user=user))
    context = _context(
        request, "Recovery codes", remaining=recovery_codes_remaining(user=user), codes=None
    )
    return render(request, "admin/twofactor/recovery_codes.html", context)


def _show_codes(request: HttpRequest, codes: list[str]) -> HttpResponse:
    context = _context(request, "Your recovery codes", codes=codes, remaining=len(codes))
    return render(request, "admin/twofactor/recovery_codes.html", context)
