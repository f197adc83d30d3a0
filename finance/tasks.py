"""django-q2 jobs of the ledger: thin, safe to run twice."""

from finance import recheck


def recheck_accounts(account_ids: list[int]) -> str:
    """The real-time balance re-check run by a worker (FINANCE_REALTIME_RECHECK=async)."""
    mismatches = recheck.account_balances_recheck(account_ids=account_ids)
    return f"{len(mismatches)} of {len(account_ids)} account(s) differ from their lines"
