from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from alerts import services
from alerts.models import Alert, AlertEvent


class AlertEventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = AlertEvent
        fields = ["kind", "at", "actor", "note"]


class AlertSerializer(serializers.ModelSerializer):
    events = AlertEventSerializer(many=True, read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id", "source", "key", "severity", "title", "details", "state", "occurrences",
            "first_seen", "last_seen", "acknowledged_at", "acknowledged_by", "resolved_at",
            "resolved_by", "events",
        ]  # fmt: skip
        read_only_fields = fields


class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AlertSerializer
    filterset_fields = ["state", "severity", "source", "key"]
    ordering_fields = ["last_seen", "first_seen", "occurrences"]
    action_permissions = {
        "acknowledge": ["alerts.acknowledge_alert"],
        "resolve": ["alerts.resolve_alert"],
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

    @extend_schema(request=None, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        alert = services.alert_resolve(
            alert=get_object_or_404(self.get_queryset(), pk=pk), actor=request.user
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=alert.pk)).data)
