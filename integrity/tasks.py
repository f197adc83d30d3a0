"""django-q2 jobs of the integrity app: thin, safe to run twice."""

from integrity.idempotency import idempotency_purge_expired


def purge_expired_idempotency_keys() -> int:
    return idempotency_purge_expired()
