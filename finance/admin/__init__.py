"""Ledger admin: every write goes through finance.services; posted entries are read-only.

Each module registers its models when imported here: `accounts` (the chart of accounts),
`periods` (fiscal periods and their close), `entries` (journal entries and their lines).
"""

from finance.admin import accounts, entries, periods

__all__ = ["accounts", "entries", "periods"]
