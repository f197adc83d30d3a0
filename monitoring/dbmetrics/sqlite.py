"""SQLite's figures: pages (count, size, free), the sizes of the file and its WAL, and the
largest tables with their indexes (the dbstat virtual table, when SQLite was built with it)."""

import os
import sqlite3
from typing import Any

from django.db import DatabaseError

from monitoring.dbmetrics.base import DatabaseFigures


def _pragma(cursor: Any, name: str) -> int:
    cursor.execute(f"PRAGMA {name}")
    return int(cursor.fetchone()[0])


def _file_bytes(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return None


LARGEST_TABLES = 20

# Each b-tree's pages, summed per table: its own (a table or a WITHOUT ROWID table) and its
# indexes'. sqlite_schema names the table an index belongs to.
TABLE_SIZES_SQL = """
SELECT s.tbl_name,
       sum(CASE WHEN s.type = 'table' THEN d.pgsize ELSE 0 END),
       sum(CASE WHEN s.type = 'index' THEN d.pgsize ELSE 0 END)
FROM dbstat d JOIN sqlite_schema s ON s.name = d.name
WHERE d.aggregate = 1
GROUP BY s.tbl_name
ORDER BY sum(d.pgsize) DESC, s.tbl_name
LIMIT %s
"""


def largest_tables(cursor: Any) -> list[dict[str, Any]]:
    cursor.execute(TABLE_SIZES_SQL, [LARGEST_TABLES])
    return [
        {
            "table": name,
            "table_bytes": int(table_bytes or 0),
            "index_bytes": int(index_bytes or 0),
            "total_bytes": int(table_bytes or 0) + int(index_bytes or 0),
        }
        for name, table_bytes, index_bytes in cursor.fetchall()
    ]


def _is_memory(name: str) -> bool:
    return not name or name == ":memory:" or "mode=memory" in name


class SqliteMetrics:
    engine = "sqlite"

    def collect(self, connection: Any) -> DatabaseFigures:
        with connection.cursor() as cursor:
            page_count = _pragma(cursor, "page_count")
            page_size = _pragma(cursor, "page_size")
            freelist_count = _pragma(cursor, "freelist_count")
            notes: list[str] = []
            try:
                tables = largest_tables(cursor)
            except (DatabaseError, sqlite3.Error) as exc:  # SQLite built without dbstat
                tables = []
                notes.append(f"largest tables: {str(exc).strip() or 'dbstat unavailable'}")
        name = str(connection.settings_dict["NAME"])
        figures: dict[str, Any] = {
            "page_count": page_count,
            "page_size": page_size,
            "freelist_count": freelist_count,
            "free_bytes": freelist_count * page_size,
            "file_bytes": None,
            "wal_bytes": None,
            "largest_tables": tables,
        }
        volume_path = None
        if not _is_memory(name):
            path = os.path.abspath(name)
            figures["file_bytes"] = _file_bytes(path)
            # No -wal file means nothing waits for a checkpoint (or the journal is not WAL).
            figures["wal_bytes"] = _file_bytes(path + "-wal") or 0
            volume_path = os.path.dirname(path)
        return DatabaseFigures(
            engine=self.engine,
            # page_count reads through the WAL, so this is the database as readers see it.
            database_bytes=page_count * page_size,
            volume_path=volume_path,
            figures=figures,
            notes=notes,
        )
