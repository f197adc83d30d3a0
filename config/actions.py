"""The plumbing's audit actions (API tokens, the admin of models without a service):
`<entity>.<verb>`, past tense, each with what it records.

Part of the catalogue of every action, `audit.actions.catalogue()`."""

ACTIONS: dict[str, str] = {
    # config/tokens.py
    "api_token.created": "an API token was issued (never the token itself)",
    "api_token.revoked": "an API token was revoked",
    # config/admin_helpers.py AuditedAdminMixin: models without a service
    "admin.added": "an object was added in the admin (its values)",
    "admin.changed": "an object was changed in the admin (before and after, m2m added/removed)",
    "admin.deleted": "an object was deleted in the admin (its last values)",
}
