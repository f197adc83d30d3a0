"""SQLite's figures: pages (count, size, free) and the sizes of the file and its WAL."""

import os
from typing import Any

from monitoring.dbmetrics.base import DatabaseFigures


def _pragma(cursor: Any, name: str) -> int:
    cursor.execute(f"PRAGMA {name}")
    return int(cursor.fetchone()[0])


def _file_bytes(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return None


def _is_memory(name: str) -> bool:
    return not name or name == ":memory:" or "mode=memory" in name


class SqliteMetrics:
    engine = "sqlite"

    def collect(self, connection: Any) -> DatabaseFigures:
        with connection.cursor() as cursor:
            page_count = _pragma(cursor, "page_count")
            page_size = _pragma(cursor, "page_size")
            freelist_count = _pragma(cursor, "freelist_count")
        name = str(connection.settings_dict["NAME"])
        figures: dict[str, Any] = {
            "page_count": page_count,
            "page_size": page_size,
            "freelist_count": freelist_count,
            "free_bytes": freelist_count * page_size,
            "file_bytes": None,
            "wal_bytes": None,
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
        )
