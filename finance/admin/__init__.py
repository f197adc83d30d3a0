"""Ledger admin: every write goes through finance.services; posted entries are read-only.

Each module registers its models when imported here: `accounts` (the chart of accounts),
`periods` (fiscal periods and their close), `entries` (journal entries and their lines);
`dashboard` registers the Financial dashboard (config/dashboards.py).
"""

from finance.admin import accounts, dashboard, entries, periods

__all__ = ["accounts", "dashboard", "entries", "periods"]
