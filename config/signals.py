"""Signals that carry events from the plumbing (and the layers under the error log) upwards.

The layers below `monitoring` must not import it, so they announce an unexpected error here
and the error log (monitoring/receivers.py) records it. Senders use `send_robust`: a receiver
that fails must not turn one error into two. When nothing is connected (the error log is not
installed in this process) the sender logs the error itself.

- `api_exception(exc, context)`: the API exception handler met an error it does not map (a 500).
- `operation_failed(exc, name, payload)`: the transaction manager gave up on an operation.
"""

from django.dispatch import Signal

api_exception = Signal()
operation_failed = Signal()
