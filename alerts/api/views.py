from datetime import timedelta

from django.contrib.auth.models import User
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from alerts import services
from alerts.models import Alert, AlertEvent, Silence
from config import serializers as strict


class AlertEventSerializer(strict.ModelSerializer):
    actor: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = AlertEvent
        fields = ["kind", "at", "actor", "note"]


class AlertSerializer(strict.ModelSerializer):
    events = AlertEventSerializer(many=True, read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "source",
            "key",
            "severity",
            "title",
            "details",
            "state",
            "occurrences",
            "first_seen",
            "last_seen",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolved_by",
            "events",
        ]
        read_only_fields = fields


class SilenceSerializer(strict.ModelSerializer):
    class Meta:
        model = Silence
        fields = [
            "id",
            "source",
            "key_pattern",
            "severity",
            "starts_at",
            "ends_at",
            "weekdays",
            "window_start",
            "window_end",
            "timezone",
            "reason",
            "created_by",
            "created_at",
            "needs_approval",
            "approved_by",
            "approved_at",
        ]
        read_only_fields = [
            "created_by",
            "created_at",
            "needs_approval",
            "approved_by",
            "approved_at",
        ]
        extra_kwargs = {"starts_at": {"required": False}, "timezone": {"required": False}}


class AlertSilenceSerializer(serializers.Serializer):
    minutes = strict.IntegerField(min_value=1, max_value=7 * 24 * 60)
    reason = strict.CharField(max_length=2000)


class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AlertSerializer
    filterset_fields = ["state", "severity", "source", "key"]
    ordering_fields = ["last_seen", "first_seen", "occurrences"]
    action_permissions = {
        "acknowledge": ["alerts.acknowledge_alert"],
        "resolve": ["alerts.resolve_alert"],
        "silence": ["alerts.add_silence"],
    }

    def get_queryset(self):
        return Alert.objects.select_related("acknowledged_by", "resolved_by").prefetch_related(
            "events__actor"
        )

    @extend_schema(request=None, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        alert = services.alert_acknowledge(
            alert=get_object_or_404(self.get_queryset(), pk=pk), actor=request.user
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=alert.pk)).data)

    @extend_schema(request=AlertSilenceSerializer, responses={201: SilenceSerializer})
    @action(detail=True, methods=["post"])
    def silence(self, request, pk=None):
        """Silence this alert's source and key for a while."""
        alert = get_object_or_404(self.get_queryset(), pk=pk)
        data = AlertSilenceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        silence = services.silence_create(
            actor=request.user,
            reason=data.validated_data["reason"],
            source=alert.source,
            key_pattern=alert.key,
            severity=alert.severity,
            ends_at=timezone.now() + timedelta(minutes=data.validated_data["minutes"]),
        )
        return Response(SilenceSerializer(silence).data, status=201)

    @extend_schema(request=None, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        alert = services.alert_resolve(
            alert=get_object_or_404(self.get_queryset(), pk=pk), actor=request.user
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=alert.pk)).data)


class SilenceViewSet(viewsets.ModelViewSet):
    serializer_class = SilenceSerializer
    http_method_names = ["get", "post", "head", "options"]
    action_permissions = {
        "approve": ["alerts.change_silence"],
        "expire": ["alerts.change_silence"],
    }

    def get_queryset(self):
        return Silence.objects.select_related("created_by", "approved_by")

    def create(self, request, *args, **kwargs):
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        silence = services.silence_create(
            actor=request.user,
            reason=v.pop("reason"),
            ends_at=v.pop("ends_at"),
            timezone_name=v.pop("timezone", "UTC"),
            **v,
        )
        return Response(self.get_serializer(silence).data, status=201)

    @extend_schema(request=None, responses=SilenceSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        silence = services.silence_approve(
            silence=get_object_or_404(self.get_queryset(), pk=pk), actor=request.user
        )
        return Response(self.get_serializer(silence).data)

    @extend_schema(request=None, responses=SilenceSerializer)
    @action(detail=True, methods=["post"])
    def expire(self, request, pk=None):
        silence = services.silence_expire(
            silence=get_object_or_404(self.get_queryset(), pk=pk), actor=request.user
        )
        return Response(self.get_serializer(silence).data)
