"""django-axes, made to count and answer whatever a request carries.

A failed login is counted by django-axes and recorded in the audit trail by a receiver of the
same signal. Neither may turn a refused login into a 500: the status would then tell a
guesser which password was right (a correct one reaches other code than a wrong one), and the
attempt would go uncounted. Text that django-axes stores from the request (user agent, path,
Accept) is stripped of control characters first, and a failure of its bookkeeping is logged
and contained in a savepoint, so the other receivers and the answer go on.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from axes.handlers.database import AxesDatabaseHandler
from django.db import DatabaseError, transaction

from config.middleware import CONTROL_CHARACTERS
from config.twofactor.services import otp_required

logger = logging.getLogger("ledgerguard.auth")


def without_control_characters(value: str) -> str:
    return CONTROL_CHARACTERS.sub("\ufffd", value)


def _clean(request) -> None:
    for name in ("axes_user_agent", "axes_path_info", "axes_http_accept"):
        value = getattr(request, name, None)
        if isinstance(value, str):
            setattr(request, name, without_control_characters(value))


@contextmanager
def _contained(what: str) -> Iterator[None]:
    """django-axes' bookkeeping in a savepoint; its failure is logged, never raised."""
    try:
        with transaction.atomic():
            yield
    except (DatabaseError, ValueError):
        logger.exception("django-axes could not %s", what)


class LockoutHandler(AxesDatabaseHandler):
    def get_failures(self, request, credentials=None) -> int:
        _clean(request)
        return super().get_failures(request, credentials)

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        if request is not None:
            _clean(request)
        with _contained("count a failed login"):
            super().user_login_failed(sender, credentials, request, **kwargs)

    def user_logged_in(self, sender, request, user, **kwargs):
        _clean(request)
        # The password alone is half a login when a second factor follows: the failures
        # counted so far (wrong codes at the token endpoint too) stay until it passes
        # (config.twofactor.services.second_factor_passed), or a password-only login would
        # lift the lockout.
        request.axes_keep_failures = otp_required(user)
        with _contained("log a login"):
            super().user_logged_in(sender, request, user, **kwargs)

    def reset_user_attempts(self, request, credentials=None) -> int:
        if getattr(request, "axes_keep_failures", False):
            return 0
        count: int = super().reset_user_attempts(request, credentials)
        return count

    def user_logged_out(self, sender, request, user, **kwargs):
        _clean(request)
        with _contained("log a logout"):
            super().user_logged_out(sender, request, user, **kwargs)
