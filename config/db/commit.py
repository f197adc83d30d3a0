"""Work held on a database connection until its transaction commits: the before-commit hooks.

A service holds an item for a named hook anywhere in its transaction (`connection.hold`). The
item waits on the connection with the savepoints that were open, so rolling one of them back
drops it, and a rollback drops everything; just before COMMIT the hook writes all the items of
the transaction, in it. Apps register their hooks at AppConfig.ready (the audit trail appends its
events to the hash chain this way), since the plumbing imports no app. Holding for a hook that
nobody registered raises: what is held belongs to the transaction and is never dropped quietly.

A hook may lock a row every transaction needs (the audit chain head) for the last instant
only. That lock must be the transaction's last: checks that would otherwise run at COMMIT
(PostgreSQL's deferred foreign keys and constraint triggers) run first
(`check_deferred_now`), or they could wait, holding that row, for a row whose holder waits
for it.

Under a test's own atomic blocks nothing ever commits: items are written when the outermost
block that is not the test's is left, which is where the commit would have been, or at once
when held directly under the test's blocks. Which blocks are a test's the test harness says
(`recognise_test_blocks`, tests/conftest.py); outside tests no block is one.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, transaction

from config.errors import BeforeCommitError

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper as _Wrapper
else:
    _Wrapper = object

Hook = Callable[[Any, list[Any]], None]  # (connection, the items held for it, in order)

_HOOKS: dict[str, Hook] = {}


def register_before_commit(name: str, hook: Hook) -> None:
    """Run `hook` just before each commit of a transaction that holds items for `name`."""
    existing = _HOOKS.get(name)
    if existing is not None and _qualified(existing) != _qualified(hook):
        raise ValueError(f"before-commit hook {name!r} registered twice")
    _HOOKS[name] = hook


def _qualified(hook: Hook) -> str:
    return f"{getattr(hook, '__module__', '')}.{getattr(hook, '__qualname__', repr(hook))}"


def _no_test_blocks(block: Any) -> bool:
    return False


_is_test_block: Callable[[Any], bool] = _no_test_blocks


def recognise_test_blocks(predicate: Callable[[Any], bool]) -> None:
    """Tell which atomic blocks a test opened around itself (they roll back, never commit)."""
    global _is_test_block
    _is_test_block = predicate


def only_test_blocks_open(connection: Any) -> bool:
    """True when every open atomic block is a test's own: leaving the next block, or doing
    anything outside one, stands where a commit would be."""
    blocks = connection.atomic_blocks
    return bool(blocks) and all(_is_test_block(block) for block in blocks)


class BeforeCommitMixin(_Wrapper):
    """Mixed into the database backends in `config/db/` (before Django's DatabaseWrapper)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (savepoints open when held, hook, item), in the order held.
        self.held: list[tuple[frozenset[str], str, Any]] = []
        # Every savepoint still open, atomic() blocks' and manual transaction.savepoint()s alike.
        self.open_savepoints: list[str] = []

    def hold(self, hook: str, item: Any) -> None:
        """Hold `item` for `hook` until this transaction commits; outside a transaction, in a
        transaction of its own."""
        if hook not in _HOOKS:
            raise ImproperlyConfigured(
                f"no before-commit hook {hook!r} is registered (its app is not installed or "
                "not ready): nothing would write what is held"
            )
        if self.get_autocommit():
            with transaction.atomic(using=self.alias):
                self.hold(hook, item)
            return
        self.held.append((frozenset(self.open_savepoints), hook, item))
        if only_test_blocks_open(self):
            self.run_before_commit_hooks()

    def run_before_commit_hooks(self) -> None:
        """Hand every held item to its hook, in this (uncommitted) transaction."""
        held, self.held = self.held, []
        by_hook: dict[str, list[Any]] = {}
        for _savepoints, hook, item in held:
            by_hook.setdefault(hook, []).append(item)
        for name, items in by_hook.items():
            try:
                _HOOKS[name](self, items)
            except DatabaseError:
                raise
            except Exception as exc:
                raise BeforeCommitError(f"before-commit hook {name!r} failed: {exc!r}") from exc

    def check_deferred_now(self) -> None:
        """Run now the checks the database would run at COMMIT, taking their locks before any
        hook's (backends with deferred constraints override this)."""

    # Django's transaction methods, keeping `held` and `open_savepoints` in step.

    def commit(self) -> None:
        if self.held:
            self.check_deferred_now()
        self.run_before_commit_hooks()
        super().commit()

    def rollback(self) -> None:
        self.held, self.open_savepoints = [], []
        super().rollback()

    def close(self) -> None:
        self.held, self.open_savepoints = [], []
        super().close()

    def _commit(self) -> None:
        self.open_savepoints = []
        super()._commit()  # type: ignore[misc]  # private in Django, absent from its stubs

    def savepoint(self) -> str | None:
        sid = super().savepoint()
        if sid is not None:
            self.open_savepoints.append(sid)
        return sid

    def savepoint_rollback(self, sid: str) -> None:
        super().savepoint_rollback(sid)
        self.held = [entry for entry in self.held if sid not in entry[0]]

    def savepoint_commit(self, sid: str) -> None:
        # Under a test's own blocks this release stands where the commit would be. Run the
        # hooks first: if that fails, the savepoint still exists for atomic() to roll back to.
        if self.held and only_test_blocks_open(self):
            self.run_before_commit_hooks()
        super().savepoint_commit(sid)
        if sid in self.open_savepoints:
            self.open_savepoints.remove(sid)
