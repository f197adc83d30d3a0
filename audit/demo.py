"""The demo's audit chain (config/demo.py, `manage.py seed_demo`): runs last, after every other
seeder has recorded its events through its services, and leaves the chain signed and verified
so that the Audit dashboard shows it green.

No audit table is written here: the events are the other seeders', the checkpoint and the
verification come from the services that the hourly and nightly jobs call. A checkpoint or a
verification cannot be back-dated, so both are from today.
"""

from audit.exceptions import SigningKeyMissing
from audit.models import VerificationStatus
from audit.selectors import audit_chain_overview
from audit.services import chain_verify, checkpoint_create
from config.demo import DemoContext, DemoHistory


def seed_chain(ctx: DemoContext) -> str:
    chain = audit_chain_overview(checkpoints=1)
    signed_to = chain.checkpoints[0].sequence if chain.checkpoints else 0
    # Already green: a recent full verification that passed and a checkpoint (the backups'
    # real backup, seeded after this, records events past them: the hourly jobs sign those).
    if chain.state == "ok" and signed_to:
        return "Audit: the chain is already signed and verified; nothing added."
    # Signed first, so that the verification also checks the new checkpoint; the verification
    # then records itself after it (a later checkpoint run has that event to sign).
    try:
        checkpoint = checkpoint_create()
    except SigningKeyMissing:
        signed = "no checkpoint (AUDIT_SIGNING_KEY is not set)"
    else:
        signed = f"checkpoint at #{checkpoint.sequence}" if checkpoint else "no new checkpoint"
    verification = chain_verify(triggered_by="seed_demo")
    if verification.status != VerificationStatus.OK:
        return (
            f"Audit: {signed}; the chain did NOT verify ({verification.get_status_display()}, "
            f"first bad event #{verification.first_bad_id}): see docs/runbooks.md."
        )
    return (
        f"Audit: {signed}; the whole chain verified ({verification.events_checked} events, "
        f"{verification.checkpoints_checked} checkpoints)."
    )


DEMO = [DemoHistory(name="audit.chain", order=90, seed=seed_chain)]
