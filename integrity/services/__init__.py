"""Integrity services, by concern:

- `deadletters`: the dead-letter queue (create, retry, discard, the scheduled retrier, queue
  health);
- `task_failures`: a django-q2 task that failed for good becomes a dead letter;
- `operations`: retention of the transaction manager's operation records;
- `checkruns`: run the registered checks, store results and findings, alert;
- `findings`: explain a finding, withdraw an explanation.

Callers import from here (`from integrity import services`, `from integrity.services import
checks_run`); the modules behind may move.
"""

from integrity.exceptions import CheckRunError, DeadLetterError, FindingError

# A read, kept here too: finance's real-time re-check judges by it as a run does.
from integrity.selectors import explanations_in_force
from integrity.services.checkruns import (
    checkrun_create,
    checkrun_execute,
    checkrun_queue,
    checkruns_abandon_stale,
    checkruns_purge,
    checks_run,
)
from integrity.services.deadletters import (
    deadletter_create,
    deadletter_discard,
    deadletter_queue_check,
    deadletter_retry,
    deadletter_retry_due,
)
from integrity.services.findings import finding_explain, finding_explanation_withdraw
from integrity.services.operations import operation_records_purge
from integrity.services.task_failures import task_failure_dead_letter

__all__ = [
    "CheckRunError",
    "DeadLetterError",
    "FindingError",
    "checkrun_create",
    "checkrun_execute",
    "checkrun_queue",
    "checkruns_abandon_stale",
    "checkruns_purge",
    "checks_run",
    "deadletter_create",
    "deadletter_discard",
    "deadletter_queue_check",
    "deadletter_retry",
    "deadletter_retry_due",
    "explanations_in_force",
    "finding_explain",
    "finding_explanation_withdraw",
    "operation_records_purge",
    "task_failure_dead_letter",
]
