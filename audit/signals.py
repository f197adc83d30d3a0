"""What the audit trail announces to the layers above it, which it must not import.

The trail verifies itself and signs checkpoints; raising and resolving the alerts about that
is the business of the alerting side (integrity/receivers.py listens). Sent with `send`, not
`send_robust`: a receiver that cannot raise its alert fails the verification or the job, as
the alert call itself would.

- `chain_verified(verification)`: a verification ended and its result is stored (before its
  own `audit.chain_verified` event, which may fail when appending is what is broken).
- `checkpoint_attempted(error)`: the checkpoint job ran; `error` says why it could not sign,
  "" when it could (whether or not there was anything new to sign).
"""

from django.dispatch import Signal

chain_verified = Signal()
checkpoint_attempted = Signal()
