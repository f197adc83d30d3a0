"""Audit events wait in their transaction and join the chain just before it commits.

A service records its event wherever it likes; the event is held on the database connection
(with the savepoints that were open, so rolling a savepoint back drops its events) and written
by `commit()`: lock the chain head, number and hash the events, insert them, move the head,
commit. The head lock is held only for that instant, so audited transactions that touch
unrelated rows do not queue behind each other. It must be the last lock a transaction takes:
checks that would otherwise run at COMMIT (PostgreSQL's deferred foreign keys and constraint
triggers) are run first (`audit_before_append`), or they could wait, holding the head, for a
row whose holder waits for the head.

Under Django's TestCase nothing ever commits, so the events are written when the outermost
block that is not the test's own is left, which is where the commit would have been.
"""

from typing import Any

from django.db import DatabaseError


class AuditChainError(DatabaseError):
    """The pending events could not join the chain; the transaction is rolled back."""


class AuditConnectionMixin:
    """Mixed into the database backends in `config/db/`."""

    audit_pending: list[tuple[set, dict[str, Any]]]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.audit_pending = []
        # Every savepoint still open, atomic() blocks' and manual transaction.savepoint()s alike.
        self.audit_savepoints: list[str] = []

    def audit_hold(self, content: dict[str, Any]) -> None:
        self.audit_pending.append((set(self.audit_savepoints), content))

    def savepoint(self):
        sid = super().savepoint()
        if sid is not None:
            self.audit_savepoints.append(sid)
        return sid

    def audit_flush(self) -> None:
        pending, self.audit_pending = self.audit_pending, []
        if not pending:
            return
        from audit.chain import append

        try:
            append(self, [content for _, content in pending])
        except DatabaseError:
            raise
        except Exception as exc:  # Atomic only rolls back on DatabaseError
            raise AuditChainError(f"audit events could not be appended: {exc!r}") from exc

    def only_test_blocks_open(self) -> bool:
        return bool(self.atomic_blocks) and all(b._from_testcase for b in self.atomic_blocks)

    def audit_before_append(self) -> None:
        """Take, before the chain head, every lock the commit would take after it (engines
        with deferred constraints override this)."""

    def commit(self):
        if self.audit_pending:
            self.audit_before_append()
        self.audit_flush()
        super().commit()

    def rollback(self):
        self.audit_pending, self.audit_savepoints = [], []
        super().rollback()

    def close(self):
        self.audit_pending, self.audit_savepoints = [], []
        super().close()

    def _commit(self):
        self.audit_savepoints = []
        super()._commit()

    def savepoint_rollback(self, sid):
        super().savepoint_rollback(sid)
        self.audit_pending = [(sids, c) for (sids, c) in self.audit_pending if sid not in sids]

    def savepoint_commit(self, sid):
        # Under a test's own blocks, this release stands where the commit would be. Flush first:
        # if that fails, the savepoint still exists for Atomic to roll back to.
        if self.audit_pending and self.only_test_blocks_open():
            self.audit_flush()
        super().savepoint_commit(sid)
        if sid in self.audit_savepoints:
            self.audit_savepoints.remove(sid)
