"""Integrity's audit actions (dead letters, schedules, check runs):
`<entity>.<verb>`, past tense, each with what it records.

Part of the catalogue of every action, `audit.actions.catalogue()`."""

ACTIONS: dict[str, str] = {
    # integrity/services/deadletters.py, integrity/scheduling.py
    "dead_letter.created": "a failed operation or task was kept as a dead letter",
    "dead_letter.retried": "a dead letter's retry succeeded",
    "dead_letter.retry_failed": "a dead letter's retry failed (again later, or for good)",
    "dead_letter.discarded": "a dead letter was discarded, with the reason",
    "schedules.synced": "the declared schedules were written (created, updated, deleted)",
    "schedule.paused": "a scheduled job was paused in the admin",
    "schedule.resumed": "a paused scheduled job was resumed (its next slot)",
    "schedule.rescheduled": "a scheduled job's next run was moved (run now, or later)",
    # integrity/services/checkruns.py, findings.py
    "checks.requested": "a check run was requested (trigger, tags, checks, window)",
    "checks.completed": "a check run finished (status and checks per outcome)",
    "checks.abandoned": "a check run left running by a process that died was marked abandoned",
    "check_finding.explained": "a check finding was explained with a reason; it no longer counts",
    "check_finding.explanation_withdrawn": "an explanation of a check finding was withdrawn",
}
