import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.reverse import reverse

from config import filters, registry
from config.pagination import IdCursorPagination
from config.permissions import perms_required
from integrity import selectors, services
from integrity.api.serializers import (
    CheckResultSerializer,
    CheckRunRequestSerializer,
    CheckRunSerializer,
    DeadLetterSerializer,
    DiscardSerializer,
    ExplainSerializer,
    FindingSerializer,
)
from integrity.models import CheckRun, Finding


class CheckSerializer(serializers.Serializer):
    name = serializers.CharField()
    tag = serializers.CharField()
    severity = serializers.CharField()
    description = serializers.CharField()
    windowed = serializers.BooleanField()
    warn_at = serializers.IntegerField(allow_null=True)
    error_at = serializers.IntegerField(allow_null=True)
    alert = serializers.CharField()
    last = serializers.DictField(allow_null=True)


class FindingFilter(filters.FilterSet):
    check = django_filters.CharFilter(field_name="check_name")
    severity = django_filters.ChoiceFilter(
        choices=[(s, s) for s in ("warning", "error", "critical")]
    )
    explained = filters.BooleanFilter(field_name="explanation", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Finding
        fields = ["run", "check", "severity", "explained"]


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


class CheckRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Runs of the integrity and financial checks; POST starts one (queued, or `wait`)."""

    serializer_class = CheckRunSerializer
    pagination_class = IdCursorPagination
    filterset_fields = ["status", "trigger"]
    ordering_fields: list[str] = []
    action_permissions = {"create": ["integrity.run_checks"]}

    def get_queryset(self):
        return selectors.checkrun_list()

    @extend_schema(
        request=CheckRunRequestSerializer,
        responses={201: CheckRunSerializer, 202: CheckRunSerializer},
    )
    def create(self, request):
        data = CheckRunRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if v["wait"]:
            run = services.checks_run(
                trigger=CheckRun.Trigger.API, actor=request.user, tags=v["tags"], checks=v["checks"]
            )
            code: int = status.HTTP_201_CREATED
        else:
            run = services.checkrun_queue(
                trigger=CheckRun.Trigger.API, actor=request.user, tags=v["tags"], checks=v["checks"]
            )
            code = status.HTTP_202_ACCEPTED
        body = self.get_serializer(selectors.checkrun_list().get(pk=run.pk)).data
        location = reverse("v1:check-run-detail", args=[run.pk], request=request)
        return Response(body, status=code, headers={"Location": location})


class CheckViewSet(viewsets.ViewSet):
    """The registered checks with their latest result, and each check's trend."""

    permission_classes = [perms_required("integrity.view_checkrun")]
    lookup_field = "name"
    lookup_value_regex = r"[a-z0-9_.]+"

    @extend_schema(responses=CheckSerializer(many=True))
    def list(self, request):
        return Response(CheckSerializer(selectors.check_status_list(), many=True).data)

    @extend_schema(responses=CheckResultSerializer(many=True))
    @action(detail=True, methods=["get"])
    def trend(self, request, name=None):
        if name not in registry.all_checks():
            raise NotFound(f"No check {name!r}.")
        rows = selectors.check_trend(check_name=name, limit=100)
        return Response(CheckResultSerializer(rows, many=True).data)


class FindingViewSet(viewsets.ReadOnlyModelViewSet):
    """What the checks found; a person may explain a finding (with a reason) or withdraw it."""

    serializer_class = FindingSerializer
    filterset_class = FindingFilter
    ordering_fields: list[str] = []
    action_permissions = {
        "explain": ["integrity.explain_finding"],
        "withdraw_explanation": ["integrity.explain_finding"],
    }

    def get_queryset(self):
        return selectors.finding_list()

    @extend_schema(request=ExplainSerializer, responses=FindingSerializer)
    @action(detail=True, methods=["post"])
    def explain(self, request, pk=None):
        data = ExplainSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        finding = services.finding_explain(
            finding=get_object_or_404(self.get_queryset(), pk=pk),
            actor=request.user,
            reason=data.validated_data["reason"],
        )
        return Response(self.get_serializer(selectors.finding_list().get(pk=finding.pk)).data)

    @extend_schema(request=None, responses=FindingSerializer)
    @action(detail=True, methods=["post"], url_path="withdraw-explanation")
    def withdraw_explanation(self, request, pk=None):
        finding = services.finding_explanation_withdraw(
            finding=get_object_or_404(self.get_queryset(), pk=pk), actor=request.user
        )
        return Response(self.get_serializer(selectors.finding_list().get(pk=finding.pk)).data)
