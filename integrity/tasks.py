"""django-q2 jobs of the integrity app: thin, safe to run twice."""

from integrity import services
from integrity.idempotency import idempotency_purge_expired


def purge_expired_idempotency_keys() -> int:
    return idempotency_purge_expired()


def retry_due_dead_letters() -> dict[str, int]:
    return services.deadletter_retry_due()


def check_dead_letter_queue() -> dict:
    return services.deadletter_queue_check()


def purge_operation_records() -> int:
    return services.operation_records_purge()
