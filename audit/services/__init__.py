"""Audit services: record events, bound the repeatable ones, sign checkpoints, verify the chain.

- `record.py`: `audit_record`, what every other service calls inside its own transaction, and
  `snapshot`/`diff` to describe a change.
- `repeats.py`: events an outsider can cause at will, recorded up to a limit, then counted.
- `checkpoints.py`: signing the chain head and reading the stored checkpoints back.
- `verification.py`: recomputing the chain and checking it against the checkpoints.

Exports live in audit/export.py, the witness's copies of checkpoints in audit/witness.py.
"""

from audit.services.checkpoints import (
    checkpoint_create,
    checkpoint_dir,
    checkpoint_message,
    checkpoint_signature,
    checkpoint_signature_problem,
    key_id,
    stored_checkpoints,
)
from audit.services.record import REDACTED, SENSITIVE, actor_repr, audit_record, diff, snapshot
from audit.services.repeats import audit_record_repeatable, repeats_summarize
from audit.services.verification import chain_verify, chain_verify_or_queue

__all__ = [
    "REDACTED",
    "SENSITIVE",
    "actor_repr",
    "audit_record",
    "audit_record_repeatable",
    "chain_verify",
    "chain_verify_or_queue",
    "checkpoint_create",
    "checkpoint_dir",
    "checkpoint_message",
    "checkpoint_signature",
    "checkpoint_signature_problem",
    "diff",
    "key_id",
    "repeats_summarize",
    "snapshot",
    "stored_checkpoints",
]
