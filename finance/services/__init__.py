"""Ledger services: the only code that changes ledger state.

    accounts.py     open, change and delete accounts
    periods.py      fiscal periods: open, rename, close once the books reconcile, reopen
    entries.py      journal entry drafts: create, change, delete, submit, send back
    lines.py        lines from input to rows, and as the audit trail shows them
    posting.py      numbering and balances under the ledger's lock order (validate, then do)
    operations.py   approve, post, record (one or a batch) and reverse as transaction-manager
                    operations
    bulk.py         record and post many entries in a few statements (set-based)

The real-time re-check of the balance cache after each posting is finance/recheck.py. Callers
import from here: `from finance import services` or `from finance.services import ...`.
"""

from finance.services.accounts import (
    ACCOUNT_AUDITED,
    ACCOUNT_EDITABLE,
    LOCKED_WHEN_POSTED,
    account_create,
    account_delete,
    account_update,
)
from finance.services.entries import (
    ENTRY_AUDITED,
    journal_entry_create,
    journal_entry_delete,
    journal_entry_reject,
    journal_entry_submit,
    journal_entry_update,
)
from finance.services.lines import line_inputs
from finance.services.operations import (
    BATCH_MAX_ENTRIES,
    BATCH_MAX_LINES,
    journal_entries_record_batch,
    journal_entry_approve,
    journal_entry_post,
    journal_entry_record,
    journal_entry_reverse,
)
from finance.services.periods import (
    PERIOD_AUDITED,
    PERIOD_CLOSE_CHECK_TAGS,
    PERIOD_CLOSE_CHECKS,
    period_close,
    period_create,
    period_rename,
    period_reopen,
)

__all__ = [
    "ACCOUNT_AUDITED",
    "ACCOUNT_EDITABLE",
    "BATCH_MAX_ENTRIES",
    "BATCH_MAX_LINES",
    "ENTRY_AUDITED",
    "LOCKED_WHEN_POSTED",
    "PERIOD_AUDITED",
    "PERIOD_CLOSE_CHECKS",
    "PERIOD_CLOSE_CHECK_TAGS",
    "account_create",
    "account_delete",
    "account_update",
    "journal_entries_record_batch",
    "journal_entry_approve",
    "journal_entry_create",
    "journal_entry_delete",
    "journal_entry_post",
    "journal_entry_record",
    "journal_entry_reject",
    "journal_entry_reverse",
    "journal_entry_submit",
    "journal_entry_update",
    "line_inputs",
    "period_close",
    "period_create",
    "period_rename",
    "period_reopen",
]
