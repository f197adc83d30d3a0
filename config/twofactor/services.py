"""Two-factor services: who needs the second factor, verifying a code, enrolling an
authenticator, recovery codes and resetting a user's devices. Each change is one transaction
with its audit event; no event holds a key or a code.

Recovery codes are stored hashed: django-otp keeps a static token as it is given, so the value
given to it is a digest of the code the user holds (`_stored`), and a copy of the database
does not give the codes away.
"""

import base64
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_credentials
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone
from django_otp import user_has_device
from django_otp.models import Device, VerifyNotAllowed
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from config import events
from config.errors import DomainError

logger = logging.getLogger("ledgerguard.auth")

RECOVERY_CODE_COUNT = 10
TOTP_DEVICE_NAME = "Authenticator app"
STATIC_DEVICE_NAME = "Recovery codes"
_TOTP_CODE = re.compile(r"[0-9]{6}")
_RECOVERY_CODE = re.compile(r"[a-z2-7]{16}")


class OtpResetRefused(DomainError):
    code = "otp.reset_refused"
    http_status = 403


@dataclass(frozen=True)
class Verification:
    """The outcome of a code: the device that accepted it, or why none did (`reason`:
    "invalid", "malformed", "throttled", "no_device"). `retry_after`: seconds, when throttled."""

    device: Device | None
    reason: str = ""
    retry_after: int = 0

    @property
    def ok(self) -> bool:
        return self.device is not None


def otp_required(user: Any) -> bool:
    """Whether `user` must pass a second factor: every staff user and every superuser (who holds
    every permission through the API, staff flag or not) while ADMIN_REQUIRE_2FA is on, and
    anyone who has enrolled a device (enrolment is never undone by a setting)."""
    if not getattr(user, "is_authenticated", False):
        return False
    if settings.ADMIN_REQUIRE_2FA and (user.is_staff or user.is_superuser):
        return True
    return has_confirmed_device(user)


def has_confirmed_device(user: Any) -> bool:
    return bool(user_has_device(user, confirmed=True))


def normalise_code(code: str) -> str:
    """What the user typed, without spaces and dashes, lower case (recovery codes are shown
    grouped: `abcd-efgh-ijkl-mnop`)."""
    return re.sub(r"[\s-]", "", code).lower()[:64]


def otp_verify(*, user: Any, code: str, purpose: str) -> Verification:
    """Check a TOTP code (six digits) against the user's confirmed authenticator, or a
    recovery code against their recovery codes, which it then uses up. The shape of the code
    picks the device, so that a wrong code counts against one device's throttle only.

    `purpose` ("admin", "api_token") goes into the audit event. A refused code is recorded too
    (throttled ones within the trail's bounds for repeats)."""
    normalised = normalise_code(code)
    if _TOTP_CODE.fullmatch(normalised):
        model: type[Device] = TOTPDevice
        method, token = "totp", normalised
    elif _RECOVERY_CODE.fullmatch(normalised):
        model, method, token = StaticDevice, "recovery_code", _stored(normalised)
    else:
        _record_failure(user=user, method="unknown", reason="malformed", purpose=purpose)
        return Verification(None, "malformed")
    with transaction.atomic():
        device = (
            model.objects.devices_for_user(user, confirmed=True)
            .select_for_update()
            .order_by("pk")
            .first()
        )
        if device is None:
            _record_failure(user=user, method=method, reason="no_device", purpose=purpose)
            return Verification(None, "no_device")
        return _verify_with(device=device, user=user, token=token, method=method, purpose=purpose)


def _verify_with(
    *, device: Device, user: Any, token: str, method: str, purpose: str
) -> Verification:
    allowed, info = device.verify_is_allowed()
    if not allowed:
        _record_failure(user=user, method=method, reason="throttled", purpose=purpose)
        return Verification(None, "throttled", _retry_after(info))
    if not device.verify_token(token):
        _record_failure(user=user, method=method, reason="invalid", purpose=purpose)
        return Verification(None, "invalid")
    metadata = {"method": method, "purpose": purpose, "device": device.persistent_id}
    if method == "recovery_code":
        metadata["remaining"] = device.token_set.count()
        events.record(action="auth.otp_recovery_code_used", obj=user, actor=user, metadata=metadata)
    events.record(action="auth.otp_verified", obj=user, actor=user, metadata=metadata)
    return Verification(device)


def _retry_after(info: dict[str, Any] | None) -> int:
    if not info or info.get("reason") != VerifyNotAllowed.N_FAILED_ATTEMPTS:
        return 1
    locked_until = info.get("locked_until")
    if locked_until is None:
        return 1
    return max(1, int((locked_until - timezone.now()).total_seconds()) + 1)


def _failure_metadata(user: Any, method: str, reason: str, purpose: str) -> dict[str, Any]:
    return {
        "user": user.pk,
        "username": user.get_username(),
        "method": method,
        "reason": reason,
        "purpose": purpose,
    }


def _record_failure(*, user: Any, method: str, reason: str, purpose: str) -> None:
    """A refused code. Checked codes are bounded by the device's throttle (the n-th failure
    in a row waits 2^(n-1) seconds), so each is recorded; codes refused unchecked (throttled,
    malformed) can be sent at will, so those are recorded within the trail's repeat bounds, as
    are codes for a key being enrolled: each new key starts its throttle afresh, and whoever
    holds the password of a user with no device yet makes new keys at will."""
    if reason in ("throttled", "malformed", "no_device") or purpose == "enrolment":
        events.record_repeatable(
            action="auth.otp_failed",
            reason=f"auth.otp_failed:{reason}",
            metadata=_failure_metadata(user, method, reason, purpose),
        )
        return
    events.record(
        action="auth.otp_failed",
        obj=user,
        actor=user,
        metadata=_failure_metadata(user, method, reason, purpose),
    )


def second_factor_passed(request: Any, user: Any) -> None:
    """The rest of a login that needed a second factor: django-axes' reset of the counted
    failures on success, which config.lockout holds back at the password (the password alone
    must not lift a lockout that wrong codes are building)."""
    if not settings.AXES_RESET_ON_SUCCESS:
        return
    AxesProxyHandler.update_request(request)
    request.axes_keep_failures = False
    try:
        with transaction.atomic():  # bookkeeping: its failure must not fail the login
            AxesProxyHandler.get_implementation().reset_user_attempts(
                request, get_credentials(user.get_username())
            )
    except DatabaseError:
        logger.exception("django-axes could not reset failures after the second factor")


# Enrolment --------------------------------------------------------------------------


@transaction.atomic
def totp_device_start(*, user: Any, pending_id: int | None = None) -> TOTPDevice:
    """The user's unconfirmed authenticator for this enrolment: the one `pending_id` names (the
    enrolment page keeps it in its session, so the key stays the same on every reload and a
    scanned QR code stays good), else a new one with a new random key, replacing any other
    pending one. A key is shown to one session only: one seen by someone holding just the
    password (before the user enrolled, or before a password change) must never become the
    user's authenticator. Nothing to audit: it verifies nothing until confirmed."""
    pending = TOTPDevice.objects.devices_for_user(user, confirmed=False).select_for_update()
    device = pending.filter(pk=pending_id).first() if pending_id is not None else None
    if device is None:
        pending.delete()
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


@transaction.atomic
def totp_device_confirm(
    *, user: Any, code: str, pending_id: int | None = None
) -> tuple[Verification, list[str]]:
    """Confirm the user's pending authenticator with a code from it: the one `pending_id` names
    (the enrolment page's session), or, from code, their latest pending one. On success the
    device replaces any earlier authenticator and a new set of recovery codes replaces the old
    one; returns the verification and the codes (shown once, never stored as they are)."""
    pending = TOTPDevice.objects.devices_for_user(user, confirmed=False).select_for_update()
    if pending_id is not None:
        pending = pending.filter(pk=pending_id)
    device = pending.order_by("-pk").first()
    normalised = normalise_code(code)
    if device is None:
        return Verification(None, "no_device"), []
    if not _TOTP_CODE.fullmatch(normalised):
        _record_failure(user=user, method="totp", reason="malformed", purpose="enrolment")
        return Verification(None, "malformed"), []
    allowed, info = device.verify_is_allowed()
    if not allowed:
        _record_failure(user=user, method="totp", reason="throttled", purpose="enrolment")
        return Verification(None, "throttled", _retry_after(info)), []
    if not device.verify_token(normalised):
        _record_failure(user=user, method="totp", reason="invalid", purpose="enrolment")
        return Verification(None, "invalid"), []
    replaced = TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()[0]
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    events.record(
        action="auth.otp_enrolled",
        obj=user,
        actor=user,
        metadata={"device": device.persistent_id, "replaced": replaced},
    )
    codes = recovery_codes_generate(user=user)
    return Verification(device), codes


@transaction.atomic
def recovery_codes_generate(*, user: Any) -> list[str]:
    """A new set of RECOVERY_CODE_COUNT single-use codes for `user`, replacing the old set;
    returns them grouped for reading (`abcd-efgh-ijkl-mnop`). Only their digests are stored.
    A user generates them for themselves, from a verified session."""
    device = (
        StaticDevice.objects.select_for_update().filter(user=user).order_by("pk").first()
    ) or StaticDevice.objects.create(user=user, name=STATIC_DEVICE_NAME, confirmed=True)
    StaticToken.objects.filter(device=device).delete()
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(
        StaticToken(device=device, token=_stored(code)) for code in codes
    )
    device.throttle_reset(commit=False)
    device.save(update_fields=["throttling_failure_timestamp", "throttling_failure_count"])
    events.record(
        action="auth.otp_recovery_codes_generated",
        obj=user,
        actor=user,
        metadata={"count": len(codes)},
    )
    return [_grouped(code) for code in codes]


def recovery_codes_remaining(*, user: Any) -> int:
    count: int = StaticToken.objects.filter(device__user=user, device__confirmed=True).count()
    return count


def _new_recovery_code() -> str:
    # 10 random bytes: 80 bits, 16 base32 characters.
    return base64.b32encode(secrets.token_bytes(10)).decode().lower()


def _stored(code: str) -> str:
    """What the database holds for a recovery code: 16 base32 characters (80 bits) of its
    SHA-256, which is what django-otp's StaticToken has room for. The codes are random (80
    bits), so no salt or slow hash is needed against guessing them from a copy."""
    digest = hashlib.sha256(f"ledgerguard-recovery:{code}".encode()).digest()
    return base64.b32encode(digest).decode().lower()[:16]


def _grouped(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


# Reset ---------------------------------------------------------------------------------


def check_otp_reset(*, target: Any, actor: Any) -> None:
    """Only a superuser (or the command line, `actor` None) resets a superuser's devices, and
    nobody resets their own from the admin: a lost phone is someone else's call."""
    if actor is None:
        return
    if target.pk == actor.pk:
        raise OtpResetRefused("You cannot reset your own second factor; ask another admin.")
    if target.is_superuser and not actor.is_superuser:
        raise OtpResetRefused("Only a superuser resets a superuser's second factor.")


@transaction.atomic
def otp_devices_reset(*, target: Any, actor: Any = None, reason: str = "") -> int:
    """Delete every device of `target` (authenticators, pending or confirmed, and recovery
    codes): their verified sessions stop counting as verified, and they must enrol again at
    their next login. `actor`: the admin, or None for the command line. Returns how many
    devices went."""
    check_otp_reset(target=target, actor=actor)
    totp: int = TOTPDevice.objects.filter(user=target).delete()[1].get(TOTPDevice._meta.label, 0)
    static: int = (
        StaticDevice.objects.filter(user=target).delete()[1].get(StaticDevice._meta.label, 0)
    )
    metadata: dict[str, Any] = {"user": target.pk, "username": target.get_username()}
    metadata |= {"authenticators": totp, "recovery_code_sets": static}
    if reason:
        metadata["reason"] = reason[:200]
    events.record(action="auth.otp_reset", obj=target, actor=actor, metadata=metadata)
    return totp + static
