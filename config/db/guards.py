"""What apps tell the plumbing about the guards they install in the database.

Apps keep their triggers (`<app>/db_guards.py`) and register here, at AppConfig.ready, what
the project's backends and commands must know of them, since the plumbing imports no app:

- `limit_app_role(privileges)`: tables the application's role may touch only so far (the
  audit trail's append-only tables); `manage.py grant_app_role` and `migrate` grant them
  exactly that (config/db/roles.py).
- `register_flush_stand_down(factory)`: a context manager `manage.py flush` enters around its
  whole-table wipe (PostgreSQL triggers that refuse TRUNCATE).
- `register_sqlite_function(name, func)`: a function the SQLite backend adds to each of its
  connections, for triggers to ask (is a wipe under way?). Other SQLite clients do not have
  it, so the triggers refuse them.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

from config.db.maintenance import maintenance

StandDown = Callable[[Any], AbstractContextManager[Any]]  # (connection) -> context manager

_LIMITED: dict[str, tuple[str, ...]] = {}
_STAND_DOWNS: dict[str, StandDown] = {}
_SQLITE_FUNCTIONS: dict[str, Callable[[], Any]] = {}


def limit_app_role(privileges: Mapping[str, Sequence[str]]) -> None:
    """{table: the only privileges the application's role gets on it}."""
    for table, granted in privileges.items():
        if _LIMITED.get(table, tuple(granted)) != tuple(granted):
            raise ValueError(f"app role privileges on {table} registered twice, differently")
        _LIMITED[table] = tuple(granted)


def app_role_limits() -> dict[str, tuple[str, ...]]:
    return dict(sorted(_LIMITED.items()))


def register_flush_stand_down(name: str, factory: StandDown) -> None:
    _STAND_DOWNS[name] = factory


def unregister_flush_stand_down(name: str) -> None:
    _STAND_DOWNS.pop(name, None)


@contextmanager
def flush_stand_down(connection: Any) -> Iterator[None]:
    """The guards stood down for a whole-table wipe of `connection`'s database: maintenance
    on (which SQLite triggers ask for), then each app's stand-down, in registration order."""
    with maintenance(), ExitStack() as stack:
        for factory in _STAND_DOWNS.values():
            stack.enter_context(factory(connection))
        yield


def register_sqlite_function(name: str, func: Callable[[], Any]) -> None:
    """A function of no arguments, added to every SQLite connection the backend opens."""
    _SQLITE_FUNCTIONS[name] = func


def add_sqlite_functions(dbapi_connection: Any) -> None:
    for name, func in _SQLITE_FUNCTIONS.items():
        dbapi_connection.create_function(name, 0, func, deterministic=False)
