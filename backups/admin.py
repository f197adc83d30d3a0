"""Backups and restore drills in the admin (read-only rows): operators take a backup, verify
one or start a drill from here; admins download. Everything goes through backups.services."""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from backups import dashboard, services
from backups.models import Backup, RestoreDrill
from config import dashboards
from config.admin_helpers import ReadOnlyAdminMixin
from config.errors import DomainError


@admin.register(Backup)
class BackupAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Backups with their measurements. Take one now, verify, drill, download (admins)."""

    change_list_template = "admin/backups/backup/change_list.html"
    list_display = [
        "id",
        "started_at",
        "engine",
        "status",
        "size_bytes",
        "duration",
        "verified_at",
        "trigger",
    ]
    list_filter = ["status", "engine", "trigger"]
    search_fields = ["location", "sha256", "error"]
    readonly_fields = [f.name for f in Backup._meta.fields]
    actions = ["verify_backups", "drill_backups"]

    @admin.display(description="Seconds")
    def duration(self, backup: Backup) -> str:
        seconds = backup.duration_seconds
        return "" if seconds is None else f"{seconds:.1f}"

    @admin.display(description="Download")
    def download_link(self, backup: Backup) -> str:
        if backup.status not in services.RESTORABLE or backup.engine == Backup.Engine.PGBACKREST:
            return ""  # nothing stored, or a set in pgBackRest's repository
        url = reverse("admin:backups_backup_download", args=[backup.pk])
        if backup.status == Backup.Status.UNVERIFIED:
            return format_html('<a href="{}?allow_unverified=1">download (unverified)</a>', url)
        return format_html('<a href="{}">download</a>', url)

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = list(super().get_list_display(request))
        if request.user.has_perm("backups.download_backup"):
            shown.append("download_link")  # admins only
        return shown

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        extra_context = {**(extra_context or {}), "can_take": self.has_take_permission(request)}
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list[Any]:
        own = [
            path(
                "take/",
                self.admin_site.admin_view(self.take_view),
                name="backups_backup_take",
            ),
            path(
                "<int:pk>/download/",
                self.admin_site.admin_view(self.download_view),
                name="backups_backup_download",
            ),
        ]
        return own + super().get_urls()

    def has_take_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("backups.run_backup")

    def has_verify_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("backups.run_backup")

    def has_drill_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("backups.drill_backup")

    def take_view(self, request: HttpRequest) -> HttpResponseRedirect | HttpResponseNotAllowed:
        changelist = reverse("admin:backups_backup_changelist")
        if not self.has_take_permission(request):
            raise PermissionDenied  # refused as every admin page refuses (the role matrix)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            backup = services.backup_queue(actor=request.user, trigger=Backup.Trigger.ADMIN)
        except DomainError as exc:
            messages.error(request, f"[{exc.code}] {exc.message}")
            return HttpResponseRedirect(changelist)
        messages.success(request, f"Backup #{backup.pk} started; a worker takes and verifies it.")
        return HttpResponseRedirect(changelist)

    def download_view(self, request: HttpRequest, pk: int) -> Any:
        if not request.user.has_perm("backups.download_backup"):
            raise PermissionDenied  # only admins: a whole copy of the books
        backup = get_object_or_404(Backup, pk=pk)
        try:
            stream = services.backup_download(
                backup=backup,
                actor=request.user,
                allow_unverified=request.GET.get("allow_unverified") == "1",
            )
        except DomainError as exc:
            messages.error(request, f"[{exc.code}] {exc.message}")
            return HttpResponseRedirect(reverse("admin:backups_backup_changelist"))
        name = backup.location.rsplit("/", 1)[-1]
        response = StreamingHttpResponse(stream, content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    @admin.action(description="Verify (checksum and archive, on a worker)", permissions=["verify"])
    def verify_backups(self, request: HttpRequest, queryset: Any) -> None:
        for backup in queryset:
            try:
                services.verify_queue(backup=backup, actor=request.user)
                self.message_user(
                    request, f"Backup #{backup.pk}: verification started on a worker."
                )
            except DomainError as exc:
                self.message_user(request, f"Backup #{backup.pk}: {exc.message}", messages.ERROR)

    @admin.action(description="Start a restore drill", permissions=["drill"])
    def drill_backups(self, request: HttpRequest, queryset: Any) -> None:
        for backup in queryset:
            try:
                drill = services.drill_queue(
                    backup=backup, actor=request.user, trigger=Backup.Trigger.ADMIN
                )
                self.message_user(
                    request, f"Restore drill #{drill.pk} of backup #{backup.pk} started."
                )
            except DomainError as exc:
                self.message_user(request, f"Backup #{backup.pk}: {exc.message}", messages.ERROR)


@admin.register(RestoreDrill)
class RestoreDrillAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Restore drills: recovery time achieved, recovery point, what the restored copy passed."""

    list_display = [
        "id",
        "started_at",
        "backup",
        "status",
        "restore_seconds",
        "checks_seconds",
        "recovery_point_seconds",
        "failed_step",
    ]
    list_filter = ["status", "trigger"]
    readonly_fields = [f.name for f in RestoreDrill._meta.fields]


# The Backups dashboard and its Overview tile (backups/dashboard.py).
dashboards.register(dashboard.DASHBOARD)
