from django.contrib.auth.models import User
from rest_framework import serializers

from config import serializers as strict
from integrity.models import CheckResult, CheckRun, DeadLetter, DeadLetterEvent, Finding


class DeadLetterEventSerializer(strict.ModelSerializer):
    actor: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = DeadLetterEvent
        fields = ["action", "actor", "at", "note"]


class DeadLetterSerializer(strict.ModelSerializer):
    events = DeadLetterEventSerializer(many=True, read_only=True)

    class Meta:
        model = DeadLetter
        fields = [
            "id",
            "kind",
            "operation",
            "status",
            "payload",
            "idempotency_key",
            "error",
            "traceback",
            "attempts",
            "max_attempts",
            "next_retry_at",
            "last_attempt_at",
            "created_at",
            "updated_at",
            "resolved_at",
            "resolved_by",
            "discarded_at",
            "discarded_by",
            "discard_reason",
            "events",
        ]
        read_only_fields = fields


class DiscardSerializer(serializers.Serializer):
    # Blank is let through so that the service answers with deadletter.reason_required.
    reason = strict.CharField(max_length=2000, required=False, allow_blank=True, default="")


class CheckResultSerializer(strict.ModelSerializer):
    check = serializers.CharField(source="check_name")

    class Meta:
        model = CheckResult
        fields = [
            "check",
            "tag",
            "severity",
            "status",
            "failing_count",
            "explained_count",
            "warn_at",
            "error_at",
            "started_at",
            "duration_ms",
            "error",
        ]
        read_only_fields = fields


class CheckRunSerializer(strict.ModelSerializer):
    triggered_by: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    results = CheckResultSerializer(many=True, read_only=True)

    class Meta:
        model = CheckRun
        fields = [
            "id",
            "status",
            "trigger",
            "triggered_by",
            "schedule",
            "tags",
            "checks",
            "since",
            "created_at",
            "started_at",
            "finished_at",
            "duration_ms",
            "summary",
            "results",
        ]
        read_only_fields = fields


class CheckRunRequestSerializer(serializers.Serializer):
    tags = serializers.ListField(
        child=strict.CharField(max_length=30), required=False, default=list, max_length=20
    )
    checks = serializers.ListField(
        child=strict.CharField(max_length=100), required=False, default=list, max_length=100
    )
    wait = strict.BooleanField(
        required=False,
        default=False,
        help_text="Run now and answer 201 with the finished run (else 202, queued).",
    )


class FindingSerializer(strict.ModelSerializer):
    check = serializers.CharField(source="check_name")
    explained = serializers.BooleanField(source="is_explained", read_only=True)
    explanation = serializers.SerializerMethodField()

    class Meta:
        model = Finding
        fields = [
            "id",
            "run",
            "check",
            "severity",
            "message",
            "count",
            "object_type",
            "object_id",
            "key",
            "details",
            "sample",
            "fingerprint",
            "explained",
            "explanation",
        ]
        read_only_fields = fields

    def get_explanation(self, finding) -> dict | None:
        e = finding.explanation
        if e is None:
            return None
        withdrawn_by = e.withdrawn_by.get_username() if e.withdrawn_by else None
        return {
            "reason": e.reason,
            "explained_by": e.explained_by.get_username(),
            "explained_at": e.explained_at,
            "withdrawn_at": e.withdrawn_at,
            "withdrawn_by": withdrawn_by,
        }


class ExplainSerializer(serializers.Serializer):
    # Blank is let through so that the service answers with its own code.
    reason = strict.CharField(max_length=5000, required=False, allow_blank=True, default="")
