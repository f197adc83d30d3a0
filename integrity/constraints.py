"""What the database itself guarantees about a table's rows: unique indexes and validated CHECK
constraints, read from its catalogue.

A check that would scan a table for duplicates of a key, or for rows breaking a CHECK
constraint, need not when the database enforces it: PostgreSQL cannot create a unique index
over rows that already break it, refuses every later write that would, and has no switch that
lets rows past it (unlike triggers, which `session_replication_role = replica` or `ALTER TABLE
... DISABLE TRIGGER` stand down); a CHECK constraint that PostgreSQL has validated (not added
`NOT VALID`) holds for every row likewise. SQLite enforces a unique index the same way, but its
CHECK constraints can be switched off per connection (`PRAGMA ignore_check_constraints`), so
they are never trusted there. The checks read the catalogue, and scan only when the guarantee
is missing (an index dropped, a constraint re-added NOT VALID): integrity.duplicate_keys and
integrity.model_constraints, and finance.entry_number_gaps for duplicate numbers.

One implementation per engine, chosen by the backend's dialect (config/db/features.py).
"""

from collections.abc import Collection
from dataclasses import dataclass

from django.db import connection
from django.db.models import Model

from config.db.features import guard_dialect


@dataclass(frozen=True)
class UniqueIndex:
    name: str
    columns: frozenset[str]
    partial: bool  # enforced only on rows matching a WHERE clause


class PostgresCatalogue:
    def unique_indexes(self, table: str) -> list[UniqueIndex]:
        """Valid unique indexes over plain columns (an index left invalid by a failed
        CREATE INDEX CONCURRENTLY does not count; nor do expression indexes)."""
        with connection.cursor() as cursor:
            cursor.execute(
                """SELECT i.relname, x.indpred IS NOT NULL,
                          array(SELECT a.attname FROM unnest(x.indkey) k
                                  JOIN pg_attribute a ON a.attrelid = x.indrelid
                                   AND a.attnum = k)
                     FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                    WHERE x.indrelid = to_regclass(%s) AND x.indisunique AND x.indisvalid
                      AND x.indisready AND x.indislive AND x.indexprs IS NULL""",
                [connection.ops.quote_name(table)],
            )
            return [UniqueIndex(n, frozenset(cols), bool(p)) for n, p, cols in cursor.fetchall()]

    def validated_checks(self, table: str) -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                """SELECT conname FROM pg_constraint
                    WHERE conrelid = to_regclass(%s) AND contype = 'c' AND convalidated""",
                [connection.ops.quote_name(table)],
            )
            return {row[0] for row in cursor.fetchall()}


class SqliteCatalogue:
    def unique_indexes(self, table: str) -> list[UniqueIndex]:
        found = []
        with connection.cursor() as cursor:
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"PRAGMA index_list({quoted})")
            for _, name, unique, _, partial in cursor.fetchall():
                if not unique:
                    continue
                cursor.execute(f"PRAGMA index_info({connection.ops.quote_name(name)})")
                columns = [row[2] for row in cursor.fetchall()]
                if columns and None not in columns:  # None: an expression
                    found.append(UniqueIndex(name, frozenset(columns), bool(partial)))
        return found

    def validated_checks(self, table: str) -> set[str]:
        return set()  # PRAGMA ignore_check_constraints can let any row past them


CATALOGUES: dict[str, PostgresCatalogue | SqliteCatalogue] = {
    "postgresql": PostgresCatalogue(),
    "sqlite": SqliteCatalogue(),
}


def catalogue() -> PostgresCatalogue | SqliteCatalogue:
    return CATALOGUES[guard_dialect(connection)]


def unique_enforced(
    model: type[Model], columns: Collection[str], *, name: str = "", conditional: bool = False
) -> bool:
    """The database keeps `columns` of `model`'s table unique: a valid unique index over exactly
    those columns, either over every row, or (for a conditional constraint) the partial index
    that the migration of the constraint `name` created."""
    wanted = frozenset(model._meta.get_field(c).column for c in columns)  # type: ignore[union-attr]
    for index in catalogue().unique_indexes(model._meta.db_table):
        if index.columns != wanted:
            continue
        if not index.partial or (conditional and name and index.name == name):
            return True
    return False


def check_enforced(model: type[Model], name: str) -> bool:
    """The CHECK constraint `name` of `model`'s table holds for every row (PostgreSQL: present
    and validated)."""
    return name in catalogue().validated_checks(model._meta.db_table)
