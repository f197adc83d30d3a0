"""Password hooks. Django calls every validator's `password_changed` when a user's password is
set and saved (the admin's forms, `manage.py changepassword`, `set_password` anywhere), inside
the save's transaction: a changed password ends the API tokens issued under the old one, and
the user's other signed-in sessions."""

from typing import Any

from config.sessions import user_sessions_end_for_password_change
from config.tokens import api_tokens_revoke_for_user


class RevokeApiTokensOnPasswordChange:
    """Not a rule on the password itself: it never refuses one."""

    def validate(self, password: str, user: Any = None) -> None:
        return None

    def password_changed(self, password: str, user: Any = None) -> None:
        if user is not None and user.pk is not None:
            api_tokens_revoke_for_user(user=user, reason="password_changed")
            user_sessions_end_for_password_change(user=user)

    def get_help_text(self) -> str:
        return "Changing your password revokes your API tokens and ends your other sessions."
