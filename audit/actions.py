"""The catalogue of every audit action.

Each app names the actions it records in its own `<app>/actions.py` (`ACTIONS`, a dict of
`<entity>.<verb>` codes, past tense, to what the event records); `catalogue()` collects them
from the project's apps. The docs are checked against it, the forensics admin filters by it,
and the tests check every recorded action against it. A service that records a new action adds
it to its app's `actions.py`.
"""

from importlib import import_module

from config.appconfig import project_apps

ACTIONS: dict[str, str] = {
    # audit/receivers.py (logins, logouts, lockouts), config/authentication.py (refused tokens)
    "auth.login": "a user logged in",
    "auth.logout": "a user logged out",
    "auth.login_failed": "a login or a bearer token was refused (the username, never secrets)",
    "auth.password_changed": "a user changed their own password (never the password)",
    "auth.lockout": "a username was locked out from an address (django-axes), and each refused "
    "attempt while the lockout lasts",
    # audit/middleware.py
    "access.denied": "a request was answered 403 (permission, CSRF)",
    # audit/services/repeats.py audit_record_repeatable: repeats anyone can cause are counted
    "audit.repeats_summarized": "failed logins, lockouts or denials from one address beyond "
    "AUDIT_REPEAT_LIMIT in a window, counted (reason, address, window, count, by whom)",
    # audit/services/, audit/export.py
    "audit.chain_verified": "the hash chain was verified",
    "audit.exported": "the audit trail was exported",
}


def catalogue() -> dict[str, str]:
    """Every action of every project app (`<app>/actions.py`), by code."""
    actions: dict[str, str] = {}
    for app in project_apps():
        try:
            module = import_module(f"{app.name}.actions")
        except ModuleNotFoundError as exc:
            if exc.name != f"{app.name}.actions":
                raise
            continue
        declared: dict[str, str] = module.ACTIONS
        twice = actions.keys() & declared.keys()
        if twice:
            raise ValueError(f"audit actions declared twice: {sorted(twice)}")
        actions.update(declared)
    return dict(sorted(actions.items()))
