"""The forensics API: read the trail, follow an object or a user, verify, export.

Events are never written here: the event endpoints answer 405 to every write method.
"""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import selectors, services
from audit.api import serializers as s
from audit.export import export_range, export_zip_stream
from audit.models import Verification
from audit.services import actor_repr
from config.pagination import MAX_BIGINT, IdAscendingCursorPagination, IdCursorPagination
from config.permissions import perms_required

VIEW_TRAIL = perms_required("audit.view_auditevent")


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail, newest first, by cursor. Holders of audit.view_auditevent read every
    event; anyone else reads only the events they are the actor of."""

    serializer_class = s.AuditEventSerializer
    pagination_class = IdCursorPagination
    permission_classes = [IsAuthenticated]  # who reads what is the selector's decision
    filter_backends = []
    lookup_value_regex = "[0-9]{1,19}"

    def get_queryset(self):
        return selectors.audit_event_list(user=self.request.user)

    @extend_schema(parameters=[s.EventQuerySerializer])
    def list(self, request, *args, **kwargs):
        query = s.EventQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        events = selectors.audit_event_list(user=request.user, **query.to_selector_kwargs())
        page = self.paginate_queryset(events)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class ObjectTimelineView(generics.ListAPIView):
    """Everything recorded about one object, oldest first, by cursor."""

    serializer_class = s.AuditEventSerializer
    pagination_class = IdAscendingCursorPagination
    permission_classes = [VIEW_TRAIL]
    filter_backends = []

    def get_queryset(self):
        ref = s.ObjectRefSerializer(data=self.kwargs)
        ref.is_valid(raise_exception=True)
        return selectors.audit_object_timeline(**ref.validated_data)


class UserActivityView(APIView):
    """One user's activity report; everyone may read their own."""

    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[s.WindowSerializer], responses=s.UserActivitySerializer)
    def get(self, request, user_id: int):
        own = user_id == request.user.pk
        if not own and not selectors.audit_can_view_all(user=request.user):
            raise PermissionDenied("You may only read your own activity.")
        if user_id > MAX_BIGINT:
            raise NotFound
        query = s.WindowSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        report = selectors.audit_user_activity(user_id=user_id, **query.validated_data)
        return Response(s.UserActivitySerializer(report).data)


class ChainStatusView(APIView):
    """The chain head, the last verification and checkpoint, open audit alerts."""

    permission_classes = [VIEW_TRAIL]

    @extend_schema(responses=s.ChainStatusSerializer)
    def get(self, request):
        return Response(s.ChainStatusSerializer(selectors.audit_chain_status()).data)


class VerificationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Results of chain verifications; POST verifies now (or queues a long one)."""

    serializer_class = s.VerificationSerializer
    filterset_fields = ["status"]
    ordering_fields = ["started_at", "id"]
    action_permissions = {"create": ["audit.verify_auditevent"]}

    def get_queryset(self):
        return selectors.verification_list()

    @extend_schema(
        request=s.VerifyRequestSerializer,
        responses={
            201: OpenApiResponse(
                s.VerificationSerializer,
                description="Verified now: the "
                "status, the first bad event and every problem found.",
            ),
            202: OpenApiResponse(
                s.VerificationQueuedSerializer,
                description="More than AUDIT_VERIFY_SYNC_LIMIT events: queued for a worker.",
            ),
        },
    )
    def create(self, request, *args, **kwargs):
        data = s.VerifyRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.chain_verify_or_queue(
            from_id=data.validated_data.get("from_id"),
            to_id=data.validated_data.get("to_id"),
            triggered_by=f"api: {actor_repr(request.user)}",
        )
        if isinstance(result, Verification):
            return Response(s.VerificationSerializer(result).data, status=status.HTTP_201_CREATED)
        return Response({"queued": True, "task_id": result}, status=status.HTTP_202_ACCEPTED)


class CheckpointViewSet(viewsets.ReadOnlyModelViewSet):
    """Signed chain heads, newest first."""

    serializer_class = s.CheckpointSerializer
    filter_backends = []

    def get_queryset(self):
        return selectors.checkpoint_list()


class QueryFormatNegotiation(DefaultContentNegotiation):
    """Here `?format=` names the export's format, not a renderer; errors answer JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ExportView(APIView):
    """A zip of the events (CSV or JSON lines) and their manifest, streamed as it is made, in
    constant memory. Verify it offline with scripts/verify_audit_export.py. Every export is
    itself recorded in the trail (audit.exported)."""

    permission_classes = [perms_required("audit.export_auditevent")]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = QueryFormatNegotiation
    # No HEAD: it would run (and record) an export whose bytes nobody receives.
    http_method_names = ["get", "options"]

    @extend_schema(
        parameters=[s.ExportQuerySerializer],
        responses={
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="audit-<from>-<to>-<format>.zip: the export file and "
                "<file>.manifest.json (range, count, first/last hash, SHA-256).",
            )
        },
    )
    def get(self, request):
        query = s.ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        options = dict(query.validated_data)
        fmt = options.pop("format")
        r = export_range(**options)
        response = StreamingHttpResponse(
            export_zip_stream(fmt=fmt, r=r, actor=request.user), content_type="application/zip"
        )
        name = f"audit-{r.from_id}-{r.to_id}-{fmt}.zip"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response
