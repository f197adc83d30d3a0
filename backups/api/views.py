from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.response import Response
from rest_framework.reverse import reverse

from backups import selectors, services
from backups.api.serializers import BackupSerializer, RestoreDrillSerializer
from backups.models import Backup


class DownloadQuery(serializers.Serializer):
    allow_unverified = serializers.BooleanField(default=False)


class BackupViewSet(viewsets.ReadOnlyModelViewSet):
    """Backups with their measurements; operators take one or start a drill, admins download."""

    serializer_class = BackupSerializer
    filterset_fields = ["status", "engine", "trigger"]
    ordering_fields = ["started_at"]
    action_permissions = {
        "create": ["backups.run_backup"],
        "verify": ["backups.run_backup"],
        "drill": ["backups.drill_backup"],
        "download": ["backups.download_backup"],
    }

    def get_queryset(self):
        return selectors.backups_list()

    @extend_schema(request=None, responses={202: BackupSerializer})
    def create(self, request):
        """Take a backup now (a worker takes and verifies it); 202 with its row."""
        backup = services.backup_queue(actor=request.user, trigger=Backup.Trigger.API)
        location = reverse("v1:backup-detail", args=[backup.pk], request=request)
        body = self.get_serializer(selectors.backups_list().get(pk=backup.pk)).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    @extend_schema(request=None, responses={202: BackupSerializer})
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        """Verify the stored backup on a worker (it re-reads the whole object); 202 with the
        backup. Its status and verified_at say the outcome; a failure raises the alert."""
        backup = get_object_or_404(self.get_queryset(), pk=pk)
        services.verify_queue(backup=backup, actor=request.user)
        location = reverse("v1:backup-detail", args=[backup.pk], request=request)
        body = self.get_serializer(selectors.backups_list().get(pk=backup.pk)).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    @extend_schema(request=None, responses={202: RestoreDrillSerializer})
    @action(detail=True, methods=["post"])
    def drill(self, request, pk=None):
        """Start a restore drill of this backup (a worker runs it); 202 with the drill."""
        backup = get_object_or_404(self.get_queryset(), pk=pk)
        drill = services.drill_queue(backup=backup, actor=request.user, trigger=Backup.Trigger.API)
        location = reverse("v1:drill-detail", args=[drill.pk], request=request)
        body = RestoreDrillSerializer(selectors.drills_list().get(pk=drill.pk)).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "allow_unverified",
                bool,
                description="Download a backup whose verification or drill failed.",
            )
        ],
        responses={200: OpenApiResponse(OpenApiTypes.BINARY)},
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The stored object, as stored (compressed and encrypted when configured)."""
        if request.method == "HEAD":
            # A HEAD would send no bytes yet count as a download in the audit trail.
            raise MethodNotAllowed("HEAD")
        backup = get_object_or_404(self.get_queryset(), pk=pk)
        flag = DownloadQuery(data=request.query_params)
        flag.is_valid(raise_exception=True)
        stream = services.backup_download(
            backup=backup,
            actor=request.user,
            allow_unverified=flag.validated_data["allow_unverified"],
        )
        name = backup.location.rsplit("/", 1)[-1]
        response = StreamingHttpResponse(stream, content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class RestoreDrillViewSet(viewsets.ReadOnlyModelViewSet):
    """Restore drills: the recovery time achieved, the recovery point, what was checked."""

    serializer_class = RestoreDrillSerializer
    filterset_fields = ["status", "backup"]
    ordering_fields = ["started_at"]

    def get_queryset(self):
        return selectors.drills_list()
