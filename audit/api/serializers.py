import datetime as dt

from django.utils.dateparse import parse_date
from rest_framework import serializers

from audit.canonical import HASHED_FIELDS
from audit.export import FORMATS
from audit.models import AuditEvent, Checkpoint, Verification
from config import serializers as strict
from config.pagination import MAX_BIGINT


class MomentField(serializers.DateTimeField):
    """An ISO 8601 time, or a date meaning its midnight (UTC unless the time has a zone)."""

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                day = parse_date(value.strip())
            except ValueError:  # well formed, but no such day
                self.fail("invalid", format="YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][+HH:MM|Z]")
            if day is not None:
                return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        return super().to_internal_value(value)

    def default_timezone(self):
        return dt.UTC


class WindowSerializer(serializers.Serializer):
    since = MomentField(required=False, help_text="ISO 8601 time or date; inclusive.")
    until = MomentField(required=False, help_text="ISO 8601 time or date; exclusive.")

    def validate(self, attrs):
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and until < since:
            raise serializers.ValidationError({"until": ["Must not be before since."]})
        return attrs


class EventQuerySerializer(WindowSerializer):
    """The filters of the event list (all optional, combined with AND)."""

    actor = strict.IntegerField(
        required=False, min_value=0, max_value=MAX_BIGINT, help_text="The actor's user id."
    )
    actor_repr = serializers.CharField(
        required=False, max_length=200, help_text="Part of the actor's recorded name."
    )
    action = serializers.CharField(required=False, max_length=100, help_text="Exact action.")
    action_prefix = serializers.CharField(
        required=False, max_length=100, help_text='e.g. "journal_entry." or "auth."'
    )
    object_type = serializers.CharField(
        required=False, max_length=100, help_text='e.g. "finance.journalentry"'
    )
    object_id = serializers.CharField(required=False, max_length=64)
    request_id = serializers.CharField(required=False, max_length=64)

    def to_selector_kwargs(self) -> dict:
        data = dict(self.validated_data)
        if "actor" in data:
            data["actor_id"] = data.pop("actor")
        return data


class ObjectRefSerializer(serializers.Serializer):
    """The object of a timeline, from the URL."""

    object_type = serializers.CharField(max_length=100)
    object_id = serializers.CharField(max_length=64)


class ExportQuerySerializer(WindowSerializer):
    format = serializers.ChoiceField(choices=FORMATS, default="jsonl")
    from_id = strict.IntegerField(required=False, min_value=1, max_value=MAX_BIGINT)
    to_id = strict.IntegerField(required=False, min_value=1, max_value=MAX_BIGINT)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        first, last = attrs.get("from_id"), attrs.get("to_id")
        if first is not None and last is not None and last < first:
            raise serializers.ValidationError({"to_id": ["Must not be below from_id."]})
        return attrs


class VerifyRequestSerializer(serializers.Serializer):
    from_id = strict.JsonIntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_BIGINT
    )
    to_id = strict.JsonIntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_BIGINT
    )

    def validate(self, attrs):
        first, last = attrs.get("from_id"), attrs.get("to_id")
        if first is not None and last is not None and last < first:
            raise serializers.ValidationError({"to_id": ["Must not be below from_id."]})
        return attrs


class AuditEventSerializer(strict.ModelSerializer):
    # The id the event recorded (named as in the hashed content); the user may be gone since.
    actor_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [*HASHED_FIELDS, "hash"]
        read_only_fields = fields


class VerificationSerializer(strict.ModelSerializer):
    problems = serializers.ListField(
        child=serializers.DictField(),
        read_only=True,
        help_text="Each problem: kind (chain|checkpoint), code, message, and event_id (chain) "
        "or checkpoint_id / file and sequence (checkpoint).",
    )

    class Meta:
        model = Verification
        fields = [
            "id",
            "status",
            "first_bad_id",
            "problems",
            "started_at",
            "finished_at",
            "triggered_by",
            "from_id",
            "to_id",
            "events_checked",
            "checkpoints_checked",
        ]
        read_only_fields = fields


class VerificationQueuedSerializer(serializers.Serializer):
    queued = serializers.BooleanField()
    task_id = serializers.CharField()
    events = serializers.IntegerField(help_text="Events the verification will read.")


class CheckpointSerializer(strict.ModelSerializer):
    class Meta:
        model = Checkpoint
        fields = ["id", "sequence", "hash", "created_at", "key_id", "signature", "location"]
        read_only_fields = fields


class ChainHeadSerializer(serializers.Serializer):
    sequence = serializers.IntegerField()
    hash = serializers.CharField(allow_null=True)
    occurred_at = serializers.DateTimeField(allow_null=True)


class ChainStatusSerializer(serializers.Serializer):
    head = ChainHeadSerializer()
    last_verification = VerificationSerializer(allow_null=True)
    last_checkpoint = CheckpointSerializer(allow_null=True)
    events_since_checkpoint = serializers.IntegerField()
    open_alerts = serializers.IntegerField(help_text="Open alerts of source 'audit'.")


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class ActionCountSerializer(CountSerializer):
    action = serializers.CharField()


class DayCountSerializer(CountSerializer):
    day = serializers.DateField()


class IpCountSerializer(CountSerializer):
    ip = serializers.CharField()
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()


class UserActivitySerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField(allow_null=True)
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    total = serializers.IntegerField(help_text="Events with this user as the actor.")
    first_seen = serializers.DateTimeField(allow_null=True)
    last_seen = serializers.DateTimeField(allow_null=True)
    by_action = ActionCountSerializer(many=True)
    by_day = DayCountSerializer(many=True, help_text="Days in UTC.")
    distinct_ips = serializers.IntegerField()
    ips = IpCountSerializer(many=True, help_text="The most used addresses (at most 100).")
    failed_logins = serializers.IntegerField(help_text="Refused logins under this username.")
    lockouts = serializers.IntegerField()
    access_denials = serializers.IntegerField(help_text="Requests refused with a 403.")
