"""The catalogue of every audit action.

`ACTIONS` is the one list of action codes (dotted `<entity>.<verb>`, past tense): the docs are
generated from it, the forensics admin filters by it, and the tests check every recorded action
against it. A service that records a new action adds it here.
"""

ACTIONS: dict[str, str] = {
    # finance/services/
    "account.created": "an account was added to the chart of accounts",
    "account.updated": "an account's fields changed (before and after)",
    "account.deleted": "an account without postings was deleted",
    "period.created": "a fiscal period was created",
    "period.renamed": "a fiscal period's name changed",
    "period.closed": "a fiscal period was closed for posting",
    "period.reopened": "a closed fiscal period was reopened",
    "journal_entry.created": "a draft journal entry was written (lines, totals per currency)",
    "journal_entry.updated": "a draft's fields or lines changed (before and after)",
    "journal_entry.deleted": "a draft was deleted",
    "journal_entry.submitted": "a draft was submitted for approval",
    "journal_entry.rejected": "a pending entry was sent back to its author",
    "journal_entry.approved": "a pending entry was approved (maker-checker: who made it)",
    "journal_entry.posted": "an entry was numbered and moved the balances",
    "journal_entry.reversed": "a posted entry was reversed (the reversal's id and number)",
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
    # alerts/services/
    "alert.opened": "a new alert was raised (repeats are counted, not recorded)",
    "alert.escalated": "an open alert's severity was raised",
    "alert.acknowledged": "an alert was acknowledged (by a user or an emailed link)",
    "alert.ack_expired": "an acknowledged alert was not resolved in time and fires again",
    "alert.resolved": "an alert was resolved (by a user or by its source)",
    "alert.test_sent": "a test alert was delivered (manage.py send_test_alert)",
    "silence.created": "a silence was created",
    "silence.approved": "a silence was approved by a second operator",
    "silence.expired": "a silence was ended early",
    # monitoring/services.py
    "error_group.resolved": "an error group was marked fixed",
    "error_group.ignored": "an error group was ignored (counted, never alerted)",
    "error_group.reopened": "an error group was set back to unresolved",
    # config/tokens.py, config/authentication.py, audit/receivers.py
    "api_token.created": "an API token was issued (never the token itself)",
    "api_token.revoked": "an API token was revoked",
    "auth.login": "a user logged in",
    "auth.logout": "a user logged out",
    "auth.login_failed": "a login or a bearer token was refused (the username, never secrets)",
    "auth.password_changed": "a user changed their own password (never the password)",
    "auth.lockout": "a username was locked out from an address (django-axes), and each refused "
    "attempt while the lockout lasts",
    # audit/middleware.py
    "access.denied": "a request was answered 403 (permission, CSRF)",
    # audit/services/repeats.py audit_record_repeatable: repeats anyone can cause are counted
    "audit.repeats_summarized": "failed logins, lockouts or denials from one address beyond "
    "AUDIT_REPEAT_LIMIT in a window, counted (reason, address, window, count, by whom)",
    # config/admin_helpers.py AuditedAdminMixin: models without a service
    "admin.added": "an object was added in the admin (its values)",
    "admin.changed": "an object was changed in the admin (before and after, m2m added/removed)",
    "admin.deleted": "an object was deleted in the admin (its last values)",
    # audit/services/, audit/export.py
    "audit.chain_verified": "the hash chain was verified",
    "audit.exported": "the audit trail was exported",
}
