"""What apps may ask of the project's database backends, instead of testing `connection.vendor`.

Both backends in `config/db/` (and only they) set these on `connection.features`:

- `supports_isolation_levels`: `SET TRANSACTION ISOLATION LEVEL` works, so a check can read in
  a REPEATABLE READ snapshot and an operation can run SERIALIZABLE. SQLite transactions are
  serialised by its write lock instead, and opening one for a read would take that lock.
- `guard_dialect`: the dialect of the trigger, function and grant DDL that apps keep per engine
  (`finance/db_guards.py`, `audit/db_guards.py`, `config/db/roles.py`): "postgresql" or "sqlite".
- `has_writable_ctes`: data-modifying CTEs (`WITH x AS (INSERT ...) UPDATE ...`) over UNNEST
  arrays, and row locks through a join (`FOR UPDATE OF`): finance/services/bulk.py posts many
  entries in a few statements with them, and the audit chain appends its events and moves its
  head in one. Elsewhere both take a statement per step.
- `disables_triggers`: `ALTER TABLE ... DISABLE TRIGGER` exists (a flush that may wipe guarded
  tables stands the triggers down); SQLite's triggers ask a per-connection function instead.
"""

from typing import Any


class ProjectFeatures:
    supports_isolation_levels: bool = False
    guard_dialect: str = ""
    disables_triggers: bool = False
    has_writable_ctes: bool = False


class PostgresFeatures(ProjectFeatures):
    supports_isolation_levels = True
    guard_dialect = "postgresql"
    disables_triggers = True
    has_writable_ctes = True


class SqliteFeatures(ProjectFeatures):
    guard_dialect = "sqlite"


def project_features(connection: Any) -> ProjectFeatures:
    """The connection's features as the project's backends define them; a backend that is not
    the project's is refused rather than read as having none."""
    features = connection.features
    if not isinstance(features, ProjectFeatures):
        raise NotImplementedError(
            f"{connection.vendor} is not one of the project's backends (config.db.postgresql, "
            "config.db.sqlite3)"
        )
    return features


def guard_dialect(connection: Any) -> str:
    """The connection's DDL dialect; a backend that is not the project's has none."""
    dialect: str = getattr(connection.features, "guard_dialect", "")
    if not dialect:
        raise NotImplementedError(
            f"{connection.vendor} is not one of the project's backends (config.db.postgresql, "
            "config.db.sqlite3)"
        )
    return dialect
