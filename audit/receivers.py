"""Authentication events into the audit trail.

Receivers only call `audit_record`; the services record their own events in their own
transactions. Every action is in the catalogue, `audit.actions.catalogue()`.
"""

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth import signals

from audit.services import audit_record, audit_record_repeatable


def on_login(sender, request, user, **kwargs) -> None:
    audit_record(
        action="auth.login",
        obj=user,
        actor=user,
        metadata={"backend": getattr(user, "backend", "")},
    )


def on_logout(sender, request, user, **kwargs) -> None:
    if user is None or not getattr(user, "is_authenticated", False):
        return  # logging out an anonymous session changes nothing
    audit_record(action="auth.logout", obj=user, actor=user)


def on_login_failed(sender, credentials: dict[str, Any], request=None, **kwargs) -> None:
    # Only the name that was tried: the credentials also hold the (masked) password.
    username = str(credentials.get("username", ""))[:150]
    # "otp": the password was right, the second factor missing or wrong (config/api.py).
    method = "otp" if credentials.get("factor") == "otp" else "password"
    audit_record_repeatable(
        action="auth.login_failed",
        reason=f"auth.login_failed:{method}",
        who=username,
        metadata={"username": username, "method": method},
    )


def on_lockout(sender, request=None, username: str | None = None, ip_address=None, **kwargs):
    name = str(username or "")[:150]
    audit_record_repeatable(
        action="auth.lockout",
        reason="auth.lockout",
        who=name,
        metadata={"username": name, "ip": ip_address},
    )


def connect() -> None:
    signals.user_logged_in.connect(on_login, dispatch_uid="audit_login")
    signals.user_logged_out.connect(on_logout, dispatch_uid="audit_logout")
    signals.user_login_failed.connect(on_login_failed, dispatch_uid="audit_login_failed")
    user_locked_out.connect(on_lockout, dispatch_uid="audit_lockout")
