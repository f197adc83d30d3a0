"""Whole-table wipes (`manage.py flush`, which tests use) past the database's row guards.

The guards' SQLite triggers ask whether a wipe is under way through the functions the apps
register on the backend's connections (config/db/guards.py), which read the state kept here;
other SQLite clients lack the functions, so their DELETEs fail. Each app decides what a wipe
may touch (the audit trail only where AUDIT_ALLOW_FLUSH is on: audit/db_guards.py).
"""

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

_maintenance = contextvars.ContextVar("ledgerguard_maintenance", default=False)


@contextmanager
def maintenance() -> Iterator[None]:
    token = _maintenance.set(True)
    try:
        yield
    finally:
        _maintenance.reset(token)


def in_maintenance() -> bool:
    return _maintenance.get()
