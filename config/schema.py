"""OpenAPI additions: the one error shape on every operation, and the Idempotency-Key header."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Up to 255 printable characters, unique per request you mean to make once. Repeating "
        "the key with the same body returns the first response (header Idempotent-Replayed: "
        "true); with another body it is a 409 idempotency.key_reused. Keys are per user and "
        "expire after IDEMPOTENCY_KEY_TTL_HOURS."
    ),
)

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
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
    },
}

ERRORS = {
    "400": "Bad input (code `invalid` or `parse_error`), with field errors.",
    "401": "Not authenticated, or the token is invalid, expired or revoked.",
    "403": "The user lacks the permission (code `permission_denied`).",
    "404": "No such object (code `not_found`).",
    "409": "Idempotency-Key conflict or a concurrent change (code `idempotency.*`, `conflict`).",
    "422": "A business rule is broken; the code names the rule.",
    "500": "An operation failed and was rolled back (`operation.failed`, with the dead letter "
    "id) or an internal error (`internal_error`).",
    "503": "Temporary database trouble outlasted the retries (`operation.unavailable`); the "
    "operation was rolled back and kept as a dead letter.",
}


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path in result.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            for code, description in ERRORS.items():
                responses.setdefault(code, {"description": description, "content": ref})
    return result
