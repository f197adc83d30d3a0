"""The admin's second factor: after the password, an unverified staff user reaches only the
login, logout, verify and enrolment pages until a code verifies the session."""

from urllib.parse import urlencode

from django.http import HttpResponseRedirect
from django.urls import reverse

from config.twofactor.services import has_confirmed_device, otp_required

# The admin's pages that an unverified session may open (static files never reach here:
# WhiteNoise answers them first).
OPEN_PAGES = frozenset({"login", "logout", "otp_verify", "otp_enrol"})


class AdminTwoFactorMiddleware:
    """After django_otp's OTPMiddleware (which sets `request.user.is_verified()`)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match is None or "admin" not in match.namespaces or match.url_name in OPEN_PAGES:
            return None
        user = request.user
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return None  # the admin sends them to its login page itself
        if user.is_verified() or not otp_required(user):
            return None
        page = "admin:otp_verify" if has_confirmed_device(user) else "admin:otp_enrol"
        query = urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(f"{reverse(page)}?{query}")
