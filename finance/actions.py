"""The ledger's audit actions: `<entity>.<verb>`, past tense, each with what it records.

Part of the catalogue of every action, `audit.actions.catalogue()`."""

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
}
