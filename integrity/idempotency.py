"""Idempotency-Key support for API endpoints that create financial objects.

Semantics (as Stripe's): the same key and the same request return the first response; the same
key with another request is a 409; a request arriving while the first is still running is a
409 too, so the operation runs once. Keys are scoped to the user and expire.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response

from integrity.exceptions import IdempotencyInProgress, IdempotencyKeyInvalid, IdempotencyKeyReused
from integrity.models import IdempotencyKey

HEADER = "Idempotency-Key"
# As documented in the schema (config/schema.py): printable ASCII, space included.
_KEY = re.compile(r"[ -~]{1,255}")
# A claim older than this whose request never finished (a killed process) may be taken over.
STALE_CLAIM = timedelta(minutes=5)


@dataclass
class Claim:
    row: IdempotencyKey
    replay: bool = False


def request_fingerprint(*, method: str, path: str, data: object) -> str:
    """SHA-256 of the method, path and parsed body (key order does not matter)."""
    if hasattr(data, "lists"):  # a QueryDict from a form body
        data = {k: v for k, v in data.lists()}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(f"{method}\n{path}\n{canonical}".encode()).hexdigest()


def _validate_key(key: str) -> None:
    if not _KEY.fullmatch(key):
        raise IdempotencyKeyInvalid(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            fields={HEADER: ["Invalid."]},
        )


def idempotency_claim(*, user, key: str, scope: str, request_hash: str) -> Claim:
    """Claim a key (committed at once), or return the stored result to replay."""
    _validate_key(key)
    now = timezone.now()
    for _ in range(3):
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(
                    user=user,
                    key=key,
                    scope=scope,
                    request_hash=request_hash,
                    expires_at=now + timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS),
                )
            return Claim(row=row)
        except IntegrityError:
            found = IdempotencyKey.objects.filter(user=user, key=key).first()
            if found is None:
                continue  # released between our insert and our read: try again
            row = found
        if row.expires_at <= now or (
            row.status == IdempotencyKey.Status.IN_PROGRESS and now - row.created_at > STALE_CLAIM
        ):
            IdempotencyKey.objects.filter(pk=row.pk, status=row.status).delete()
            continue
        if row.request_hash != request_hash or row.scope != scope:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request."
            )
        if row.status == IdempotencyKey.Status.IN_PROGRESS:
            raise IdempotencyInProgress(
                "A request with this Idempotency-Key is still in progress; retry later."
            )
        return Claim(row=row, replay=True)
    raise IdempotencyInProgress("Could not claim the Idempotency-Key; retry.")


def idempotency_complete(*, claim: Claim, status: int, body: object) -> None:
    """Store the response; release the key when the request never ran or failed inside."""
    if status >= 500 or status in (400, 401, 403, 404, 409, 429):
        # Nothing was done: the client may fix the request and retry with the same key.
        IdempotencyKey.objects.filter(pk=claim.row.pk).delete()
        return
    IdempotencyKey.objects.filter(pk=claim.row.pk).update(
        status=IdempotencyKey.Status.COMPLETED,
        response_status=status,
        response_body=json.loads(json.dumps(body, cls=DjangoJSONEncoder)),
        completed_at=timezone.now(),
    )


def idempotency_purge_expired() -> int:
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


def idempotent(view_method):
    """Decorate a DRF view method that creates a financial object."""

    @wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view_method(self, request, *args, **kwargs)
        claim = idempotency_claim(
            user=request.user,
            key=key,
            scope=f"{request.method} {request.path}"[:300],
            request_hash=request_fingerprint(
                method=request.method, path=request.path, data=request.data
            ),
        )
        if claim.replay:
            return Response(
                claim.row.response_body,
                status=claim.row.response_status,
                headers={"Idempotent-Replayed": "true"},
            )
        try:
            response = view_method(self, request, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - DRF turns it into a response or re-raises
            try:
                response = self.handle_exception(exc)
            except Exception:
                idempotency_complete(claim=claim, status=500, body=None)
                raise
        idempotency_complete(claim=claim, status=response.status_code, body=response.data)
        return response

    return wrapper
