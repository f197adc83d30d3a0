"""The session engine (SESSION_ENGINE): Django's database sessions, stored under a hash of the
session key instead of the key itself.

The key in the cookie is a bearer secret: anyone who reads it from the `django_session` table
(a backup, a read-only database role, a support query) could be that user. Stored as a
SHA-256 digest, the table holds nothing that logs anyone in, and a session can still be ended
from the session list (config/sessions.py), which knows only the digest. A cookie issued before
this engine finds no row and logs in again once.
"""

import hashlib

from django.contrib.sessions.backends import db
from django.core.exceptions import SuspiciousOperation
from django.utils import timezone

# The column holds 40 characters: 160 bits of SHA-256, far beyond any guessing.
DIGEST_LENGTH = 40


def session_digest(session_key: str) -> str:
    """What the store and the session list keep of a session key."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:DIGEST_LENGTH]


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        try:
            return self.model.objects.get(
                session_key=session_digest(self.session_key or ""),
                expire_date__gt=timezone.now(),
            )
        except (self.model.DoesNotExist, SuspiciousOperation):
            self._session_key = None
            return None

    async def _aget_session_from_db(self):
        try:
            return await self.model.objects.aget(
                session_key=session_digest(self.session_key or ""),
                expire_date__gt=timezone.now(),
            )
        except (self.model.DoesNotExist, SuspiciousOperation):
            self._session_key = None
            return None

    def exists(self, session_key: str) -> bool:
        return self.model.objects.filter(session_key=session_digest(session_key)).exists()

    async def aexists(self, session_key: str) -> bool:
        return await self.model.objects.filter(session_key=session_digest(session_key)).aexists()

    def create_model_instance(self, data):
        obj = super().create_model_instance(data)
        obj.session_key = session_digest(obj.session_key)
        return obj

    async def acreate_model_instance(self, data):
        obj = await super().acreate_model_instance(data)
        obj.session_key = session_digest(obj.session_key)
        return obj

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self.delete_digest(session_digest(session_key))

    async def adelete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        await self.model.objects.filter(session_key=session_digest(session_key)).adelete()

    @classmethod
    def delete_digest(cls, digest: str) -> None:
        """End a session known only by its digest (the session list's ending)."""
        cls.get_model_class().objects.filter(session_key=digest).delete()
