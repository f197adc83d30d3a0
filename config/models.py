from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A REST client's bearer token. Only a SHA-256 digest is stored; the token is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True, help_text="Identifies the token.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) for {self.user}"


class UserSession(models.Model):
    """The index of a user's signed-in sessions, for the session list: where from, which
    browser, when started and last seen. `digest` is the session store's key (a hash of the
    cookie's key, config/sessionstore.py): nothing here logs anyone in. `last_seen_at` moves
    at most once a minute (SESSION_TOUCH_SECONDS), not on every request."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="signed_in_sessions"
    )
    digest = models.CharField(max_length=40, unique=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen_at", "-pk"]
        verbose_name = "signed-in session"

    def __str__(self) -> str:
        return f"session {self.pk} of {self.user}"
