from rest_framework import serializers

from integrity.models import DeadLetter, DeadLetterEvent


class DeadLetterEventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = DeadLetterEvent
        fields = ["action", "actor", "at", "note"]


class DeadLetterSerializer(serializers.ModelSerializer):
    events = DeadLetterEventSerializer(many=True, read_only=True)

    class Meta:
        model = DeadLetter
        fields = [
            "id", "kind", "operation", "status", "payload", "idempotency_key", "error",
            "traceback", "attempts", "max_attempts", "next_retry_at", "last_attempt_at",
            "created_at", "updated_at", "resolved_at", "resolved_by", "discarded_at",
            "discarded_by", "discard_reason", "events",
        ]  # fmt: skip
        read_only_fields = fields


class DiscardSerializer(serializers.Serializer):
    # Blank is let through so that the service answers with deadletter.reason_required.
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
