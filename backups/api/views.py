import contextlib

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse

from backups import selectors, services
from backups.api.serializers import BackupSerializer, RestoreDrillSerializer
from backups.exceptions import BackupFailed
from backups.models import Backup


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

    @extend_schema(request=None, responses=BackupSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        """Verify the stored backup now; the answer is the backup, verified or unverified."""
        backup = get_object_or_404(self.get_queryset(), pk=pk)
        # A failed verification is an answer, not an error: the row says unverified and why,
        # and the alert is raised.
        with contextlib.suppress(BackupFailed):
            services.backup_verify(backup=backup, actor=request.user)
        return Response(self.get_serializer(selectors.backups_list().get(pk=backup.pk)).data)

    @extend_schema(request=None, responses={202: RestoreDrillSerializer})
    @action(detail=True, methods=["post"])
    def drill(self, request, pk=None):
        """Start a restore drill of this backup (a worker runs it); 202 with the drill."""
        backup = get_object_or_404(self.get_queryset(), pk=pk)
        drill = services.drill_queue(backup=backup, actor=request.user, trigger=Backup.Trigger.API)
        location = reverse("v1:drill-detail", args=[drill.pk], request=request)
        body = RestoreDrillSerializer(selectors.drills_list().get(pk=drill.pk)).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.BINARY)})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The stored object, as stored (compressed and encrypted when configured)."""
        backup = get_object_or_404(self.get_queryset(), pk=pk)
        stream = services.backup_download(backup=backup, actor=request.user)
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
