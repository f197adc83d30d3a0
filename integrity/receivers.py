"""The alerts about the audit trail, raised and resolved on what the trail announces.

The trail sits below the alerts and cannot raise them; it stores each verification and tells
(audit/signals.py). Here the outcome becomes the alerts runbooks know:

    audit/chain_broken          critical  a verification found a broken link; resolved by the
                                          next full verification that finds the chain intact
    audit/checkpoint_mismatch   critical  a checkpoint disagrees with the chain; resolved by
                                          the next full verification without such a problem
    audit/checkpoint_unsigned   error     the checkpoint job cannot sign (no key); resolved by
                                          the next run that can

`connect()` is called from IntegrityConfig.ready().
"""

from typing import Any

from alerts.models import OPEN_STATES, Alert
from alerts.services import raise_alert, resolve_alert
from audit import signals as audit_signals
from audit.models import Verification, VerificationStatus
from audit.selectors import open_alerts_counter_register

SOURCE = "audit"


def on_chain_verified(sender: Any, *, verification: Verification, **kwargs: Any) -> None:
    """Raise what the verification found; a full one that found nothing of a kind resolves
    that kind (a range says nothing of the events outside it)."""
    details = {
        "verification_id": verification.pk,
        "first_bad_id": verification.first_bad_id,
        "problems": verification.problems[:5],
    }
    if verification.status == VerificationStatus.BROKEN:
        raise_alert(
            source=SOURCE,
            key="chain_broken",
            severity="critical",
            title=f"Audit chain broken at event #{verification.first_bad_id}",
            details=details,
        )
    elif verification.is_full:
        resolve_alert(source=SOURCE, key="chain_broken")
    mismatched = [p for p in verification.problems if p["kind"] == "checkpoint"]
    if mismatched:
        raise_alert(
            source=SOURCE,
            key="checkpoint_mismatch",
            severity="critical",
            title=f"Audit checkpoint mismatch: {mismatched[0]['message']}",
            details=details,
        )
    elif verification.is_full:
        resolve_alert(source=SOURCE, key="checkpoint_mismatch")


def on_checkpoint_attempted(sender: Any, *, error: str, **kwargs: Any) -> None:
    if error:
        raise_alert(
            source=SOURCE,
            key="checkpoint_unsigned",
            severity="error",
            title="Audit checkpoints are not being signed",
            details={"error": error},
        )
    else:
        resolve_alert(source=SOURCE, key="checkpoint_unsigned")


def open_audit_alerts() -> int:
    """The open alerts about the trail, for its chain status (admin page and API)."""
    return Alert.objects.filter(source=SOURCE, state__in=OPEN_STATES).count()


def connect() -> None:
    audit_signals.chain_verified.connect(on_chain_verified, dispatch_uid="integrity.audit_verified")
    audit_signals.checkpoint_attempted.connect(
        on_checkpoint_attempted, dispatch_uid="integrity.audit_checkpoint"
    )
    open_alerts_counter_register(open_audit_alerts)
