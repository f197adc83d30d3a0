from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from config import events
from config.tokens import api_token_authenticate
from config.twofactor.services import otp_required


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer lg_...` (also accepts the `Token` keyword)."""

    keywords = ("bearer", "token")

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].decode(errors="replace").lower() not in self.keywords:
            return None
        if len(parts) != 2:
            self._refused()
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        token = api_token_authenticate(parts[1].decode(errors="replace"))
        if token is None:
            self._refused()
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return token.user, token

    @staticmethod
    def _refused() -> None:
        # Nothing of the presented value, not even a prefix: it may be a mistyped secret.
        events.record_repeatable(
            action="auth.login_failed",
            reason="auth.login_failed:token",
            metadata={"method": "token"},
        )

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class VerifiedSessionAuthentication(authentication.SessionAuthentication):
    """The admin's session cookie, for the API (and its docs): only a session that passed the
    second factor when its user needs one (config/twofactor). Otherwise a password alone
    would reach through the API what the admin keeps behind the second factor."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        verified = getattr(user, "is_verified", None)
        if otp_required(user) and not (verified is not None and verified()):
            return None
        return result


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "config.authentication.ApiTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "lg_<id>_<secret>"}


class VerifiedSessionScheme(SessionScheme):
    """The session cookie in the schema, as for DRF's own session authentication."""

    target_class = "config.authentication.VerifiedSessionAuthentication"
    priority = 0
