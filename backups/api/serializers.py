from django.contrib.auth.models import User
from rest_framework import serializers

from backups.models import Backup, RestoreDrill
from config import serializers as strict


class BackupSerializer(strict.ModelSerializer):
    created_by: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Backup
        fields = [
            "id",
            "engine",
            "status",
            "trigger",
            "started_at",
            "finished_at",
            "duration_seconds",
            "snapshot_at",
            "size_bytes",
            "sha256",
            "storage",
            "location",
            "database",
            "schema_version",
            "row_counts",
            "audit_head",
            "compressed",
            "encrypted",
            "label",
            "error",
            "verified_at",
            "verification_error",
            "pruned_at",
            "created_by",
        ]
        read_only_fields = fields


class RestoreDrillSerializer(strict.ModelSerializer):
    created_by: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = RestoreDrill
        fields = [
            "id",
            "backup",
            "status",
            "trigger",
            "started_at",
            "finished_at",
            "restore_seconds",
            "checks_seconds",
            "recovery_point_seconds",
            "failed_step",
            "error",
            "results",
            "created_by",
        ]
        read_only_fields = fields
