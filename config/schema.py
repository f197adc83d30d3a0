"""OpenAPI additions: the one error shape on every operation, and the Idempotency-Key header."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from config.pagination import MAX_BIGINT
from config.routers import ID_PATTERN

IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    pattern=r"^[ -~]{1,255}$",
    description=(
        "Up to 255 printable ASCII characters, unique per request you mean to make once. Repeating "
        "the key with the same body returns the first response (header Idempotent-Replayed: "
        "true); with another body it is a 409 idempotency.key_reused. Keys are per user and "
        "expire after IDEMPOTENCY_KEY_TTL_HOURS."
    ),
)

# The error object itself: what a batch result carries for an entry it refused.
ERROR_OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message", "fields"],
    "properties": {
        "code": {"type": "string", "example": "entry.unbalanced"},
        "message": {"type": "string"},
        "fields": {
            "type": "object",
            "additionalProperties": True,
            "description": "Per-field problems: for 400 the request's shape with "
            "messages; for 422 rule violations keyed by field path.",
        },
    },
}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": ERROR_OBJECT_SCHEMA},
}

ERRORS = {
    "400": "Bad input (code `invalid`, with field errors), or a body that cannot be parsed "
    "(`parse_error`: not JSON, nested deeper than 32 levels, not valid Unicode).",
    "401": "Not authenticated, or the token is invalid, expired or revoked.",
    "403": "The user lacks the permission (code `permission_denied`).",
    "404": "No such object (code `not_found`).",
    "409": "Idempotency-Key conflict or a concurrent change (code `idempotency.*`, `conflict`).",
    "422": "A business rule is broken; the code names the rule.",
    "429": "Too many requests from this client (code `throttled`; THROTTLE_*_RATE). Retry "
    "after the seconds in Retry-After.",
    "500": "An operation failed and was rolled back (`operation.failed`, with the dead letter "
    "id) or an internal error (`internal_error`).",
    "503": "The database cannot be reached (`database.unavailable`), or temporary database "
    "trouble outlasted the retries (`operation.unavailable`; the operation was rolled back and "
    "kept as a dead letter). Retry after the seconds in Retry-After.",
}
RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": "Seconds to wait before trying again.",
    }
}
UNSUPPORTED_MEDIA_TYPE = "The body is not `application/json` (code `unsupported_media_type`)."


def add_error_responses(result, generator, request, public):
    """Every operation documents the error answers it can give, in the one error shape; an
    error a view declared without a body (a 429) gets the shape too."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path in result.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            for code, description in ERRORS.items():
                responses.setdefault(code, {"description": description, "content": ref})
            if "requestBody" in operation:
                responses.setdefault("415", {"description": UNSUPPORTED_MEDIA_TYPE, "content": ref})
            for code, response in responses.items():
                if code[0] in "45" and "content" not in response:
                    response["content"] = ref
            responses["503"].setdefault("headers", RETRY_AFTER)
            if "429" in responses:
                responses["429"].setdefault("headers", RETRY_AFTER)
    return result


WALL_TIME = {
    "type": "string",
    "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
    "description": "A wall-clock time, HH:MM[:SS[.ffffff]], without an offset.",
}


def describe_values(result, generator, request, public):
    """Values as the API reads and writes them: an id in a path is an integer (the router takes
    1 to 19 digits, config/routers.py); an optional query parameter sent empty is the same as
    one left out (DRF and django-filter both read it so); a time of day has no offset (OpenAPI's
    `format: time` is RFC 3339's, which requires one)."""
    for component in result.get("components", {}).get("schemas", {}).values():
        for name, prop in component.get("properties", {}).items():
            if prop.get("format") == "time":
                component["properties"][name] = {
                    **{k: v for k, v in prop.items() if k != "format"},
                    **WALL_TIME,
                }
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter["in"] == "path" and schema.get("pattern") == f"^{ID_PATTERN}$":
                    parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_BIGINT}
                elif parameter["in"] == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
    return result
