"""API token services: create (shown once), revoke, authenticate."""

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config import events
from config.errors import TokenLifetimeOutOfRange
from config.models import ApiToken

TOKEN_PREFIX = "lg_"  # noqa: S105 - a public prefix, not a secret


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def api_token_create(
    *, user: Any, name: str, ttl_days: int | None = None, actor: Any = None
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the raw token, which is never stored.

    `actor`: who asked for it (the user who just proved their password, or an admin); the
    request's user, or "system", when not given.
    """
    ttl_days = settings.API_TOKEN_DEFAULT_TTL_DAYS if ttl_days is None else ttl_days
    if not 1 <= ttl_days <= settings.API_TOKEN_MAX_TTL_DAYS:
        raise TokenLifetimeOutOfRange(
            f"A token lives between 1 and {settings.API_TOKEN_MAX_TTL_DAYS} days.",
            fields={"expires_in_days": ["Out of range."]},
        )
    public = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user,
        name=name[:100] or "API token",
        prefix=public,
        digest=_digest(raw),
        expires_at=timezone.now() + timedelta(days=ttl_days),
    )
    # Nothing of the token itself, not even its public prefix: the id names it.
    events.record(
        action="api_token.created",
        obj=token,
        actor=actor,
        object_repr=_repr(token),
        metadata={
            "user": user.pk,
            "username": user.get_username(),
            "name": token.name,
            "expires_at": token.expires_at,
            "ttl_days": ttl_days,
        },
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: Any = None, reason: str = "") -> ApiToken:
    """Revoke at once; `actor` defaults to the request's user."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        metadata = {"user": token.user_id, "name": token.name}
        if reason:
            metadata["reason"] = reason
        events.record(
            action="api_token.revoked",
            obj=token,
            actor=actor,
            object_repr=_repr(token),
            metadata=metadata,
        )
    return token


@transaction.atomic
def api_tokens_revoke_for_user(*, user: Any, reason: str, actor: Any = None) -> int:
    """Revoke every live token of `user` (a changed password, a deactivated account);
    returns how many were revoked."""
    live = ApiToken.objects.select_for_update().filter(user=user, revoked_at__isnull=True)
    tokens = list(live.order_by("pk"))
    for token in tokens:
        api_token_revoke(token=token, actor=actor, reason=reason)
    return len(tokens)


def _repr(token: ApiToken) -> str:
    return f"{token.name} for {token.user}"  # str(token) shows the prefix


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The live token for a raw value, or None. Lookup by digest: no timing oracle."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(digest=_digest(raw)).first()
    now = timezone.now()
    if token is None or token.revoked_at is not None or token.expires_at <= now:
        return None
    if not token.user.is_active:
        return None
    # Cheap bookkeeping: at most one write a minute per token.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
