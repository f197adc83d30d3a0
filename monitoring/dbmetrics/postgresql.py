"""PostgreSQL's figures, from the statistics views of the database the connection uses.

Nothing here stores `pg_stat_activity.query`: it holds the statement as sent, literals and all.
The longest running query and transaction are kept as their `query_id`, state and age, with
the statement's text only when pg_stat_statements knows that query id (its text is normalized,
literals replaced by $1, $2, ...).

Without `pg_read_all_stats` (or superuser) the application's role sees other roles' sessions
without state or query and their statement texts as `<insufficient privilege>`: the figures
degrade (counted as "unknown", text left out) and a note says so, never an error.
"""

import datetime
import os
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from django.db import DatabaseError, transaction

from monitoring.dbmetrics.base import DatabaseFigures
from monitoring.sqlshape import sql_shape

LARGEST_TABLES = 20
TOP_STATEMENTS = 10
TEXT_CHARS = 200
HIDDEN = "<insufficient privilege>"
GRANT_ADVICE = "GRANT pg_read_all_stats TO <the application's role>"
LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}

T = TypeVar("T")

LARGEST_TABLES_SQL = """
SELECT n.nspname, c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid),
       pg_total_relation_size(c.oid), s.n_live_tup, s.n_dead_tup, s.last_autovacuum,
       s.last_autoanalyze
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%'
ORDER BY pg_total_relation_size(c.oid) DESC, c.oid
LIMIT %s
"""

ROW_TOTALS_SQL = "SELECT sum(n_live_tup), sum(n_dead_tup) FROM pg_stat_user_tables"

CONNECTIONS_SQL = """
SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
GROUP BY 1 ORDER BY 1
"""

DATABASE_STATS_SQL = """
SELECT xact_commit, xact_rollback, deadlocks, temp_files, temp_bytes, blks_read, blks_hit,
       blks_hit::float8 / nullif(blks_hit + blks_read, 0), stats_reset
FROM pg_stat_database WHERE datname = current_database()
"""

# Other sessions of this database; ours (the one reading) is left out.
LONGEST_QUERY_SQL = """
SELECT pid, state, wait_event_type, query_id, extract(epoch FROM now() - query_start)::float8
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
  AND pid <> pg_backend_pid() AND state IS NOT NULL AND state <> 'idle'
  AND query_start IS NOT NULL
ORDER BY query_start LIMIT 1
"""

LONGEST_TRANSACTION_SQL = """
SELECT pid, state, wait_event_type, query_id, extract(epoch FROM now() - xact_start)::float8
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
  AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
ORDER BY xact_start LIMIT 1
"""

REPLICAS_SQL = """
SELECT application_name, state, sync_state, extract(epoch FROM replay_lag)::float8,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8
FROM pg_stat_replication ORDER BY application_name
"""

STANDBY_LAG_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_is_in_recovery()
            THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END
"""

EXTENSION_SQL = "SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'"

STATEMENTS_SQL = """
SELECT s.queryid, s.calls, s.total_exec_time, s.mean_exec_time, s.rows, s.query
FROM pg_stat_statements s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY s.total_exec_time DESC
LIMIT %s
"""

STATEMENT_TEXT_SQL = """
SELECT query FROM pg_stat_statements
WHERE queryid = %s AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
LIMIT 1
"""


def _plain(value: Any) -> Any:
    """A database value as JSON keeps it."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def _rows(connection: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(_plain(v) for v in row) for row in cursor.fetchall()]


def _one(connection: Any, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    rows = _rows(connection, sql, params)
    return rows[0] if rows else None


class _Reader:
    """One collection: the connection and the notes of what could not be read."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.notes: list[str] = []

    def optional(self, what: str, read: Callable[[], T], default: T) -> T:
        # In a savepoint: a view that is missing or refused leaves the connection usable.
        try:
            with transaction.atomic(using=self.connection.alias):
                return read()
        except DatabaseError as exc:
            self.notes.append(f"{what}: {(str(exc).strip().splitlines() or ['error'])[0]}")
            return default

    def database_bytes(self) -> int:
        row = _one(self.connection, "SELECT pg_database_size(current_database())")
        return int(row[0]) if row else 0

    def largest_tables(self) -> list[dict[str, Any]]:
        return [
            {
                "table": name if schema == "public" else f"{schema}.{name}",
                "table_bytes": table_bytes,
                "index_bytes": index_bytes,
                "total_bytes": total_bytes,
                "live_rows": live,
                "dead_rows": dead,
                "last_autovacuum": last_autovacuum,
                "last_autoanalyze": last_autoanalyze,
            }
            for (
                schema,
                name,
                table_bytes,
                index_bytes,
                total_bytes,
                live,
                dead,
                last_autovacuum,
                last_autoanalyze,
            ) in _rows(self.connection, LARGEST_TABLES_SQL, [LARGEST_TABLES])
        ]

    def row_totals(self) -> dict[str, Any]:
        row = _one(self.connection, ROW_TOTALS_SQL) or (None, None)
        return {"live": int(row[0] or 0), "dead": int(row[1] or 0)}

    def connections(self) -> dict[str, int]:
        return {state: int(n) for state, n in _rows(self.connection, CONNECTIONS_SQL)}

    def database_stats(self) -> dict[str, Any]:
        row = _one(self.connection, DATABASE_STATS_SQL)
        if row is None:
            return {}
        names = (
            "commits",
            "rollbacks",
            "deadlocks",
            "temp_files",
            "temp_bytes",
            "blocks_read",
            "blocks_hit",
            "cache_hit_ratio",
            "stats_reset",
        )
        return dict(zip(names, row, strict=True))

    def longest(self, sql: str) -> dict[str, Any] | None:
        row = _one(self.connection, sql)
        if row is None:
            return None
        pid, state, wait_event_type, query_id, seconds = row
        return {
            "pid": pid,
            "state": state,
            "wait_event_type": wait_event_type,
            "query_id": query_id,
            "seconds": seconds,
            "query": None,
        }

    def replication(self) -> dict[str, Any]:
        replicas = [
            {
                "name": name,
                "state": state,
                "sync_state": sync_state,
                "replay_lag_seconds": lag_seconds,
                "replay_lag_bytes": lag_bytes,
            }
            for name, state, sync_state, lag_seconds, lag_bytes in _rows(
                self.connection, REPLICAS_SQL
            )
        ]
        standby = _one(self.connection, STANDBY_LAG_SQL) or (False, None)
        return {
            "replicas": replicas,
            "standby": bool(standby[0]),
            "standby_lag_seconds": standby[1],
        }

    def extension_version(self) -> str | None:
        row = _one(self.connection, EXTENSION_SQL)
        return str(row[0]) if row else None

    def statements(self) -> list[dict[str, Any]]:
        result = []
        hidden = 0
        for queryid, calls, total_ms, mean_ms, rows, query in _rows(
            self.connection, STATEMENTS_SQL, [TOP_STATEMENTS]
        ):
            if query == HIDDEN:
                hidden += 1
                query = None
            result.append(
                {
                    "queryid": queryid,
                    "calls": calls,
                    "total_ms": total_ms,
                    "mean_ms": mean_ms,
                    "rows": rows,
                    # pg_stat_statements keeps utility statements (ALTER ROLE ... PASSWORD,
                    # DO $$ ... $$) as sent: only their shape is stored.
                    "query": sql_shape(query)[:TEXT_CHARS] if query else None,
                }
            )
        if hidden:
            self.notes.append(
                f"pg_stat_statements: {hidden} of the top statements belong to other roles and "
                f"their text is hidden ({GRANT_ADVICE})"
            )
        return result

    def statement_text(self, query_id: int) -> str | None:
        row = _one(self.connection, STATEMENT_TEXT_SQL, [query_id])
        if row is None or row[0] in (None, HIDDEN):
            return None
        return sql_shape(str(row[0]))[:TEXT_CHARS]

    def volume_path(self) -> str | None:
        """The data directory when the server runs on this host and its folder can be seen;
        reading the setting needs pg_read_all_settings (or superuser)."""
        host = str(self.connection.settings_dict.get("HOST") or "")
        if host not in LOCAL_HOSTS and not host.startswith("/"):
            return None
        row = _one(self.connection, "SELECT current_setting('data_directory')")
        path = str(row[0]) if row else ""
        return path if path and os.path.exists(path) else None


class PostgresMetrics:
    engine = "postgresql"

    def collect(self, connection: Any) -> DatabaseFigures:
        reader = _Reader(connection)
        optional = reader.optional
        connections: dict[str, int] = optional("connections", reader.connections, {})
        stats: dict[str, Any] = optional("database statistics", reader.database_stats, {})
        extension = optional("pg_stat_statements", reader.extension_version, None)
        statements: list[dict[str, Any]] = []
        if extension is None:
            reader.notes.append(
                "pg_stat_statements: the extension is not installed in this database"
            )
        else:
            statements = optional("pg_stat_statements", reader.statements, [])
        texts = {s["queryid"]: s["query"] for s in statements if s["queryid"] is not None}
        sessions: dict[str, dict[str, Any] | None] = {}
        for key, sql in (
            ("longest_query", LONGEST_QUERY_SQL),
            ("longest_transaction", LONGEST_TRANSACTION_SQL),
        ):
            session: dict[str, Any] | None = optional(key, partial(reader.longest, sql), None)
            query_id = session["query_id"] if session else None
            if session and query_id is not None and extension is not None:
                text: str | None = texts.get(query_id)
                if text is None:
                    text = optional(f"{key} text", partial(reader.statement_text, query_id), None)
                session["query"] = text
            sessions[key] = session
        if connections.get("unknown"):
            reader.notes.append(
                f"some sessions show no state: the role lacks pg_read_all_stats ({GRANT_ADVICE})"
            )
        largest: list[dict[str, Any]] = optional("largest tables", reader.largest_tables, [])
        rows: dict[str, Any] = optional("row estimates", reader.row_totals, {})
        replication: dict[str, Any] = optional("replication", reader.replication, {})
        figures: dict[str, Any] = {
            "largest_tables": largest,
            "rows": rows,
            "connections": connections,
            "database": stats,
            **sessions,
            "replication": replication,
            "pg_stat_statements": extension,
            "top_statements": statements,
        }
        return DatabaseFigures(
            engine=self.engine,
            database_bytes=reader.database_bytes(),
            connections_total=sum(connections.values()),
            cache_hit_ratio=stats.get("cache_hit_ratio"),
            deadlocks=stats.get("deadlocks"),
            volume_path=optional("data directory", reader.volume_path, None),
            figures=figures,
            notes=reader.notes,
        )
