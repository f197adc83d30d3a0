"""Signed-in sessions: their lifetimes, the index behind the session list, and ending them.

A session ends after SESSION_IDLE_TIMEOUT_MINUTES without a request, or SESSION_MAX_AGE_HOURS
after login, whichever comes first; a user ends any of their other sessions from the admin
(config/admin.py) or the API (config/api.py); a changed password ends every other session of
that user (config/passwords.py). Ending deletes the row of the session store and of the index
in one transaction with its audit event, so the cookie is dead at once, not at its next use.

The session itself carries its start, its last activity and the digest of its key
(`SESSION_META`), so that checking a lifetime reads nothing but the session Django loads
anyway. The index (`UserSession`) and the session's own "last seen" are written at most once a
minute per session (SESSION_TOUCH_SECONDS), not on every request.
"""

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import signals
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from config import context, events
from config.errors import Conflict, error_body
from config.middleware import client_ip
from config.models import UserSession
from config.sessionstore import SessionStore, session_digest

# In the session's data: {"started": epoch s, "seen": epoch s, "digest": its key's digest}.
SESSION_META = "_lg_session"
# The index and the session's last activity are written at most this often per session.
SESSION_TOUCH_SECONDS = 60


class SessionIsCurrent(Conflict):
    code = "session.current"


# Services ------------------------------------------------------------------------------------


@transaction.atomic
def user_session_start(*, request: HttpRequest, user: Any) -> UserSession:
    """Index the session `request` just logged `user` into (the login itself is audited by
    the audit trail's receiver of the same signal)."""
    now = int(time.time())
    digest = session_digest(_session_key(request))
    request.session[SESSION_META] = {"started": now, "seen": now, "digest": digest}
    seen = _aware(now)
    row, _ = UserSession.objects.update_or_create(
        digest=digest,
        defaults={
            "user": user,
            "ip": client_ip(request),
            "user_agent": request.headers.get("User-Agent", "")[:500],
            "created_at": seen,
            "last_seen_at": seen,
        },
    )
    return row


@transaction.atomic
def user_session_end(*, session: UserSession, reason: str, actor: Any = None) -> None:
    """End one session now: its store row, its index row and the audit event together."""
    SessionStore.delete_digest(session.digest)
    events.record(
        action="auth.session_ended",
        obj=session.user,
        actor=actor,
        object_repr=str(session.user),
        metadata={"session": session.pk, "reason": reason, "ip": session.ip},
    )
    UserSession.objects.filter(pk=session.pk).delete()


@transaction.atomic
def user_sessions_end_others(
    *, user: Any, keep_digest: str | None, reason: str, actor: Any = None
) -> int:
    """End every session of `user` but the one whose digest is `keep_digest` (the caller's
    own, when it is theirs); returns how many ended."""
    others = UserSession.objects.select_for_update().filter(user=user).order_by("pk")
    if keep_digest:
        others = others.exclude(digest=keep_digest)
    ended = list(others)
    for session in ended:
        user_session_end(session=session, reason=reason, actor=actor)
    return len(ended)


def user_session_end_own(*, request: HttpRequest, session_id: int) -> None:
    """The session list's "end": only one's own, and not the one asking (log out instead)."""
    session = user_session_list(user=request.user).filter(pk=session_id).first()
    if session is None:
        raise UserSession.DoesNotExist
    if session.digest == current_digest(request):
        raise SessionIsCurrent("This is the session you are using: log out instead.")
    user_session_end(session=session, reason="ended_by_user", actor=request.user)


@transaction.atomic
def user_session_expire(*, request: HttpRequest, reason: str) -> None:
    """Log out a session past its idle or absolute lifetime (config.sessions middleware)."""
    user: Any = request.user
    digest = current_digest(request)
    events.record(
        action="auth.session_expired",
        obj=user,
        actor=user,
        object_repr=str(user),
        metadata={"reason": reason},
    )
    if digest:
        UserSession.objects.filter(digest=digest).delete()
    request.session.flush()
    request.user = AnonymousUser()


def user_sessions_end_for_password_change(*, user: Any) -> int:
    """A changed password ends the user's other sessions. Django's session hash would refuse
    them lazily, at their next request; here they are deleted at once and the ending audited.
    The request's own session stays when it is that user's (their own password change)."""
    ctx = context.current()
    request = ctx.request if ctx is not None else None
    keep = None
    if request is not None and getattr(request.user, "pk", None) == user.pk:
        keep = current_digest(request)
    return user_sessions_end_others(user=user, keep_digest=keep, reason="password_changed")


def _follow_key(request: HttpRequest) -> None:
    """After a view cycled the session key (a password change, a login over a session), the
    index follows it: the digest is what the session list and ending use."""
    meta = request.session.get(SESSION_META)
    digest = current_digest(request)
    if meta and digest and meta.get("digest") != digest:
        UserSession.objects.filter(digest=meta["digest"]).update(digest=digest)
        request.session[SESSION_META] = {**meta, "digest": digest}


def _touch(request: HttpRequest, meta: dict[str, Any], now: int) -> None:
    request.session[SESSION_META] = {**meta, "seen": now}
    UserSession.objects.filter(digest=meta.get("digest", "")).update(last_seen_at=_aware(now))


# Selectors -----------------------------------------------------------------------------------


def user_session_list(*, user: Any) -> QuerySet[UserSession]:
    """The live sessions of `user`: in the store, and within both lifetimes."""
    now = timezone.now()
    stored = Session.objects.filter(session_key=OuterRef("digest"), expire_date__gt=now)
    return (
        UserSession.objects.filter(
            user=user,
            last_seen_at__gt=now - idle_timeout() - timedelta(seconds=SESSION_TOUCH_SECONDS),
            created_at__gt=now - max_age(),
        )
        .filter(Exists(stored))
        .order_by("-last_seen_at", "-pk")
    )


def current_digest(request: HttpRequest) -> str | None:
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    return session_digest(key) if key else None


def idle_timeout() -> timedelta:
    return timedelta(minutes=settings.SESSION_IDLE_TIMEOUT_MINUTES)


def max_age() -> timedelta:
    return timedelta(hours=settings.SESSION_MAX_AGE_HOURS)


def expiry_reason(meta: dict[str, Any], now: int) -> str | None:
    """ "idle", "max_age" or None for a session's metadata at `now` (epoch seconds)."""
    if now - int(meta.get("started", 0)) >= max_age().total_seconds():
        return "max_age"
    if now - int(meta.get("seen", 0)) >= idle_timeout().total_seconds():
        return "idle"
    return None


def _session_key(request: HttpRequest) -> str:
    if request.session.session_key is None:
        request.session.save()
    return str(request.session.session_key)


def _aware(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


# Middleware and receivers ----------------------------------------------------------------------


class SessionLifetimeMiddleware:
    """After authentication: logs out a session past a lifetime (the admin then asks for a
    login; the API answers 401 `auth.session_expired`), notes activity once a minute, and
    indexes a session that has no entry yet (one made before this, or by a test client)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        expired = self._check(request)
        if expired and request.path.startswith("/api/") and "authorization" not in request.headers:
            return _expired_answer()
        if expired:
            messages.warning(request, "Your session expired; please log in again.")
        response = self.get_response(request)
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            _follow_key(request)
        return response

    @staticmethod
    def _check(request: HttpRequest) -> bool:
        if request.session.session_key is None or not request.user.is_authenticated:
            return False  # no session cookie: nothing read, nothing written
        now = int(time.time())
        meta = request.session.get(SESSION_META)
        if not meta:
            user_session_start(request=request, user=request.user)
            return False
        reason = expiry_reason(meta, now)
        if reason is not None:
            user_session_expire(request=request, reason=reason)
            return True
        _follow_key(request)
        if now - int(meta.get("seen", 0)) >= SESSION_TOUCH_SECONDS:
            _touch(request, request.session[SESSION_META], now)
        return False


def _expired_answer() -> JsonResponse:
    body = error_body("auth.session_expired", "Your session expired; log in again.")
    response = JsonResponse(body, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _on_login(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        user_session_start(request=request, user=user)


def _on_logout(sender, request, user, **kwargs) -> None:
    digest = current_digest(request) if request is not None else None
    if digest:
        UserSession.objects.filter(digest=digest).delete()


def connect() -> None:
    signals.user_logged_in.connect(_on_login, dispatch_uid="config_session_login")
    signals.user_logged_out.connect(_on_logout, dispatch_uid="config_session_logout")
