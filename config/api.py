"""API token endpoints: exchange a password for a token, list and revoke your tokens; your
signed-in sessions: list them, end one or all the others."""

from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_login_failed
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config import serializers as strict
from config.errors import AuthenticationFailed, SecondFactorFailed
from config.models import ApiToken, UserSession
from config.sessions import (
    current_digest,
    user_session_end_own,
    user_session_list,
    user_sessions_end_others,
)
from config.throttling import AnonThrottle, LoginThrottle
from config.tokens import api_token_create, api_token_revoke
from config.twofactor.services import otp_required, otp_verify


class TokenRequestSerializer(serializers.Serializer):
    username = strict.CharField(max_length=150)
    password = strict.CharField(max_length=200, style={"input_type": "password"})
    name = strict.CharField(max_length=100, required=False, default="API token")
    expires_in_days = strict.IntegerField(required=False)
    otp = strict.CharField(
        max_length=64,
        required=False,
        help_text="A code from the user's authenticator app, or one of their recovery codes. "
        "Required for a user who has set up two-factor authentication, and for every staff "
        "user and superuser while ADMIN_REQUIRE_2FA is on.",
    )


class TokenSerializer(strict.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at"]


class NewTokenSerializer(TokenSerializer):
    token = serializers.CharField(help_text="Shown once; only a hash is stored.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]


# An unused second-factor code must not reach the error log (monitoring/capture.py).
@method_decorator(sensitive_post_parameters("password", "otp"), name="dispatch")
class TokenObtainView(APIView):
    """Exchange a username and password for a bearer token (shown once)."""

    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [LoginThrottle, AnonThrottle]

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            201: NewTokenSerializer,
            401: OpenApiResponse(
                description="Unknown user or wrong password (`auth.failed`); a second factor "
                "needed and missing (`auth.otp_required`) or wrong (`auth.otp_invalid`)."
            ),
            429: OpenApiResponse(
                description="Too many logins from this address (`throttled`, "
                "THROTTLE_LOGIN_RATE), or this "
                "username is locked out after failed logins (`auth.locked_out`)."
            ),
        },
    )
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,  # the HttpRequest: django-axes marks a lockout on it
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if user is None or not user.is_active:
            raise AuthenticationFailed("Unknown user or wrong password.")
        if otp_required(user):
            self._second_factor(request, user, data.validated_data.get("otp", ""))
        token, raw = api_token_create(
            user=user,
            name=data.validated_data["name"],
            ttl_days=data.validated_data.get("expires_in_days"),
            actor=user,  # this view authenticates no one: the password just proved who it is
        )
        body = TokenSerializer(token).data | {"token": raw}
        return Response(body, status=status.HTTP_201_CREATED)

    @staticmethod
    def _second_factor(request, user, code: str) -> None:
        """A missing or wrong code is a failed login for django-axes, as a wrong password is:
        it counts towards the lockout of this username and address (and the device's own
        throttle counts a wrong code)."""
        if code:
            result = otp_verify(user=user, code=code, purpose="api_token")
            if result.ok:
                return
            error = SecondFactorFailed("Wrong, used or throttled second-factor code.")
        else:
            error = SecondFactorFailed(
                "This user needs a second factor: send `otp`, a code from their authenticator "
                "app or a recovery code.",
                code="auth.otp_required",
                fields={"otp": ["This field is required for this user."]},
            )
        user_login_failed.send(
            sender=TokenObtainView,
            credentials={"username": user.get_username(), "factor": "otp"},
            request=request._request,
        )
        raise error


class _OwnObjectsViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The requesting user's own objects only (`own`), listed and deleted."""

    permission_classes = [IsAuthenticated]
    model: Any

    def own(self, user) -> Any:
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return self.model.objects.none()
        user = self.request.user
        if isinstance(user, AnonymousUser):  # IsAuthenticated refused it already
            return self.model.objects.none()
        return self.own(user)


class TokenViewSet(_OwnObjectsViewSet):
    """Your own tokens; DELETE revokes one at once."""

    serializer_class = TokenSerializer
    model = ApiToken

    def own(self, user) -> Any:
        return ApiToken.objects.filter(user=user)

    def perform_destroy(self, instance):
        api_token_revoke(token=instance)


class SessionSerializer(strict.ModelSerializer):
    current = serializers.SerializerMethodField(help_text="The session making this request.")

    class Meta:
        model = UserSession
        fields = ["id", "ip", "user_agent", "created_at", "last_seen_at", "current"]

    def get_current(self, obj: UserSession) -> bool:
        return obj.digest == self.context.get("current_digest")


class EndedSerializer(serializers.Serializer):
    ended = serializers.IntegerField()


class SessionViewSet(_OwnObjectsViewSet):
    """Your own signed-in sessions (admin and API logins by password); DELETE ends one of the
    others at once (409 `session.current` for the one asking: log out instead)."""

    serializer_class = SessionSerializer
    model = UserSession

    def own(self, user) -> Any:
        return user_session_list(user=user)

    def get_serializer_context(self):
        return {
            **super().get_serializer_context(),
            "current_digest": current_digest(self.request._request),
        }

    def destroy(self, request, *args, **kwargs):
        user_session_end_own(request=request._request, session_id=int(kwargs["pk"]))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: EndedSerializer})
    @action(detail=False, methods=["post"], url_path="end-others")
    def end_others(self, request):
        """End every session of yours but the one making this request (all of them, when
        the request carries a token)."""
        ended = user_sessions_end_others(
            user=request.user,
            keep_digest=current_digest(request._request),
            reason="others_ended_by_user",
            actor=request.user,
        )
        return Response({"ended": ended})
