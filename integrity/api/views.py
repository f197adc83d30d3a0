from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from integrity import selectors, services
from integrity.api.serializers import DeadLetterSerializer, DiscardSerializer


class DeadLetterViewSet(viewsets.ReadOnlyModelViewSet):
    """Operations and tasks that could not finish; operators retry or discard them."""

    serializer_class = DeadLetterSerializer
    filterset_fields = ["status", "kind", "operation"]
    ordering_fields = ["created_at", "next_retry_at"]
    action_permissions = {
        "retry": ["integrity.retry_deadletter"],
        "discard": ["integrity.discard_deadletter"],
    }

    def get_queryset(self):
        return selectors.deadletter_list()

    @extend_schema(request=None, responses=DeadLetterSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        letter = services.deadletter_retry(
            dead_letter=get_object_or_404(self.get_queryset(), pk=pk), actor=request.user
        )
        return Response(self.get_serializer(selectors.deadletter_list().get(pk=letter.pk)).data)

    @extend_schema(request=DiscardSerializer, responses=DeadLetterSerializer)
    @action(detail=True, methods=["post"])
    def discard(self, request, pk=None):
        data = DiscardSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        letter = services.deadletter_discard(
            dead_letter=get_object_or_404(self.get_queryset(), pk=pk),
            actor=request.user,
            reason=data.validated_data["reason"],
        )
        return Response(self.get_serializer(selectors.deadletter_list().get(pk=letter.pk)).data)
