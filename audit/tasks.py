"""django-q2 jobs of the audit app: thin, safe to run twice."""

from alerts.services import raise_alert, resolve_alert
from audit import services


def checkpoint() -> int | None:
    try:
        made = services.checkpoint_create()
    except services.SigningKeyMissing as exc:
        raise_alert(
            source="audit",
            key="checkpoint_unsigned",
            severity="error",
            title="Audit checkpoints are not being signed",
            details={"error": str(exc)},
        )
        return None
    resolve_alert(source="audit", key="checkpoint_unsigned")
    return made.sequence if made else None


def verify_chain(
    from_id: int | None = None,
    to_id: int | None = None,
    triggered_by: str = "schedule: audit.verify_chain",
) -> dict:
    verification = services.chain_verify(from_id=from_id, to_id=to_id, triggered_by=triggered_by)
    return {"status": verification.status, "first_bad_id": verification.first_bad_id}


def summarize_repeats() -> int:
    return services.repeats_summarize()
