"""The plumbing's audit actions (API tokens, the admin of models without a service):
`<entity>.<verb>`, past tense, each with what it records.

Part of the catalogue of every action, `audit.actions.catalogue()`."""

ACTIONS: dict[str, str] = {
    # config/tokens.py
    "api_token.created": "an API token was issued (never the token itself)",
    "api_token.revoked": "an API token was revoked",
    # config/twofactor/services.py (never a key or a code)
    "auth.otp_verified": "a second-factor code was accepted (method: totp or recovery_code; "
    "purpose: admin or api_token)",
    "auth.otp_failed": "a second-factor code was refused (method, reason: invalid, malformed, "
    "throttled or no_device, purpose)",
    "auth.otp_enrolled": "a user confirmed a new authenticator app (replacing any earlier one)",
    "auth.otp_recovery_code_used": "a recovery code was used up (how many remain)",
    "auth.otp_recovery_codes_generated": "a user made a new set of recovery codes (the old set "
    "no longer works)",
    "auth.otp_reset": "an admin or the command line deleted a user's two-factor devices (actor, "
    "target, how many)",
    # config/sessions.py
    "auth.session_ended": "a signed-in session was ended: by its user from the session list, or "
    "by a password change (reason, session id, its address; never its key)",
    "auth.session_expired": "a session past its idle or absolute lifetime was logged out (reason)",
    # config/admin_helpers.py AuditedAdminMixin: models without a service
    "admin.added": "an object was added in the admin (its values)",
    "admin.changed": "an object was changed in the admin (before and after, m2m added/removed)",
    "admin.deleted": "an object was deleted in the admin (its last values)",
}
