"""Financial checks: the books reconcile, whatever wrote the rows.

Each check is set-based: one aggregate or anti-join over the ledger tables (a few more
statements only for the sample of what it found), never a loop over rows in Python. Sums and
money comparisons in raw SQL go through `finance.sql.money_sql()`, exact on both engines.

    totals.py      entries balance, the trial balance is zero, the cache equals the lines
    numbering.py   postings lie inside open periods; entry numbers run without gaps
    amounts.py     amounts within their currency's minor unit; no forbidden negative balance
    states.py      no row in a state the workflow cannot produce
"""

# Importing a module registers its checks (config.registry.autodiscover imports this package).
from finance.checks import amounts, numbering, states, totals
from finance.checks.totals import balance_finding

__all__ = ["amounts", "balance_finding", "numbering", "states", "totals"]
