"""Whole-table wipes (`manage.py flush`, which tests use) past the database's row guards.

The guards' SQLite triggers ask whether a wipe is under way through the functions the apps
register on the backend's connections (config/db/guards.py), which read the state kept here;
other SQLite clients lack the functions, so their DELETEs fail. The audit trail may be wiped
only where AUDIT_ALLOW_FLUSH is on (test databases): a production flush stops at the audit
tables and rolls back.
"""

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

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


def audit_wipe_allowed() -> bool:
    return _maintenance.get() and settings.AUDIT_ALLOW_FLUSH
