"""django-q2 jobs of the audit app: thin, safe to run twice."""

from typing import Any

from audit import services, signals, witness
from audit.exceptions import SigningKeyMissing
from audit.models import Checkpoint


def checkpoint() -> int | None:
    """Sign the chain head, and announce whether signing works (`checkpoint_attempted`: the
    alert that checkpoints are not being signed is raised or resolved on it)."""
    try:
        made = services.checkpoint_create()
    except SigningKeyMissing as exc:
        signals.checkpoint_attempted.send(sender=Checkpoint, error=str(exc))
        return None
    signals.checkpoint_attempted.send(sender=Checkpoint, error="")
    return made.sequence if made else None


def publish_checkpoint(publication_id: int) -> str:
    """Send one checkpoint's copy to the witness; a failure is recorded and retried by the
    schedule, never raised (audit.checkpoints_witnessed reports a witness that lags)."""
    return witness.publication_send(publication_id=publication_id)


def publish_checkpoints() -> dict[str, int]:
    return witness.publications_send_due()


def verify_chain(
    from_id: int | None = None,
    to_id: int | None = None,
    triggered_by: str = "schedule: audit.verify_chain",
) -> dict[str, Any]:
    verification = services.chain_verify(from_id=from_id, to_id=to_id, triggered_by=triggered_by)
    return {"status": verification.status, "first_bad_id": verification.first_bad_id}


def summarize_repeats() -> int:
    return services.repeats_summarize()
