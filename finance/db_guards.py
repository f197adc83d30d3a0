"""Database-level guards for the ledger: the last line of defence behind the services.

One interface, one implementation per engine (PostgreSQL, SQLite), chosen in one place.

- A posted (or reversed) entry balances per currency and has at least two lines. PostgreSQL
  checks it in a deferred constraint trigger at commit (as django-hordak does); SQLite, which
  has no deferred triggers, checks it when the status becomes posted (lines are written first).
- Lines of a posted entry cannot be inserted, updated or deleted.
- A posted entry cannot be deleted; the only change allowed to it is its status moving from
  posted to reversed.

`manage.py flush` (which tests use between transactional tests) wipes every table: on
PostgreSQL it uses TRUNCATE, which row triggers do not see; on SQLite it deletes rows, so the
delete triggers let rows go while `ledger_maintenance()` (a function registered on Django's own
connections) says so. Other SQLite clients do not have the function, so their DELETEs fail.
"""

from config.db.features import guard_dialect
from config.db.guards import register_sqlite_function
from config.db.maintenance import in_maintenance

POSTED = "('posted', 'reversed')"


def register_sqlite_functions() -> None:
    """Called by FinanceConfig.ready: the SQLite backend adds the function to its connections."""
    register_sqlite_function("ledger_maintenance", lambda: int(in_maintenance()))


class PostgresGuards:
    install_sql = f"""
CREATE OR REPLACE FUNCTION finance_check_entry_balanced() RETURNS trigger AS $$
DECLARE
    eid bigint;
    st varchar;
    bad record;
BEGIN
    IF TG_TABLE_NAME = 'finance_journalline' THEN
        IF TG_OP = 'DELETE' THEN eid := OLD.entry_id; ELSE eid := NEW.entry_id; END IF;
    ELSE
        eid := NEW.id;
    END IF;
    SELECT status INTO st FROM finance_journalentry WHERE id = eid;
    IF st IN {POSTED} THEN
        IF (SELECT count(*) FROM finance_journalline WHERE entry_id = eid) < 2 THEN
            RAISE EXCEPTION 'ledger.too_few_lines: posted journal entry % has fewer than two lines', eid
                USING ERRCODE = 'check_violation';
        END IF;
        SELECT currency, sum(CASE WHEN side = 'D' THEN amount ELSE -amount END) AS diff INTO bad
          FROM finance_journalline WHERE entry_id = eid
         GROUP BY currency
        HAVING sum(CASE WHEN side = 'D' THEN amount ELSE -amount END) <> 0
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'ledger.unbalanced: journal entry % is unbalanced in % by %', eid, bad.currency, bad.diff
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER finance_journalline_balanced
    AFTER INSERT OR UPDATE OR DELETE ON finance_journalline
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION finance_check_entry_balanced();
CREATE CONSTRAINT TRIGGER finance_journalentry_balanced
    AFTER INSERT OR UPDATE OF status ON finance_journalentry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION finance_check_entry_balanced();

CREATE OR REPLACE FUNCTION finance_protect_posted_line() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND
       (SELECT status FROM finance_journalentry WHERE id = OLD.entry_id) IN {POSTED} THEN
        RAISE EXCEPTION 'ledger.immutable: lines of posted journal entry % cannot be changed (%)', OLD.entry_id, TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP <> 'DELETE' AND
       (SELECT status FROM finance_journalentry WHERE id = NEW.entry_id) IN {POSTED} THEN
        RAISE EXCEPTION 'ledger.immutable: lines cannot be added to posted journal entry %', NEW.entry_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER finance_journalline_immutable
    BEFORE INSERT OR UPDATE OR DELETE ON finance_journalline
    FOR EACH ROW EXECUTE FUNCTION finance_protect_posted_line();

CREATE OR REPLACE FUNCTION finance_protect_posted_entry() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status IN {POSTED} THEN
            RAISE EXCEPTION 'ledger.immutable: posted journal entry % cannot be deleted', OLD.id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status IN {POSTED} AND NOT (
        OLD.status = 'posted' AND NEW.status = 'reversed'
        AND (to_jsonb(NEW) - 'status') = (to_jsonb(OLD) - 'status')
    ) THEN
        RAISE EXCEPTION 'ledger.immutable: posted journal entry % cannot be changed', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER finance_journalentry_immutable
    BEFORE UPDATE OR DELETE ON finance_journalentry
    FOR EACH ROW EXECUTE FUNCTION finance_protect_posted_entry();
"""

    uninstall_sql = """
DROP TRIGGER IF EXISTS finance_journalentry_immutable ON finance_journalentry;
DROP TRIGGER IF EXISTS finance_journalline_immutable ON finance_journalline;
DROP TRIGGER IF EXISTS finance_journalentry_balanced ON finance_journalentry;
DROP TRIGGER IF EXISTS finance_journalline_balanced ON finance_journalline;
DROP FUNCTION IF EXISTS finance_protect_posted_entry();
DROP FUNCTION IF EXISTS finance_protect_posted_line();
DROP FUNCTION IF EXISTS finance_check_entry_balanced();
"""

    def install(self, schema_editor, entry_columns: list[str]) -> None:
        schema_editor.execute(self.install_sql, params=None)

    def uninstall(self, schema_editor) -> None:
        schema_editor.execute(self.uninstall_sql, params=None)


class SqliteGuards:
    triggers = (
        "finance_journalentry_balanced",
        "finance_journalentry_insert_posted",
        "finance_journalentry_immutable",
        "finance_journalentry_no_delete",
        "finance_journalline_no_insert",
        "finance_journalline_no_update",
        "finance_journalline_no_delete",
    )

    @staticmethod
    def balanced_sql() -> str:
        """The balance check, in exact integers: SQLite keeps a decimal as a float (15
        significant digits), and a float sum of a balanced entry's lines can differ from zero
        (1,000,000,000,000.10 + 0.20 against 1,000,000,000,000.30). Each amount is rounded at
        the 15th significant digit, which is what SQLite kept of it (scale `s`: 10,000 below
        10**11, down to 1 from 10**14), then split into whole units and ten-thousandths so that
        the integer sums cannot overflow; an entry balances when both sums cancel out."""
        scaled = (
            "SELECT currency, CASE WHEN side = 'D' THEN 1 ELSE -1 END AS sg, abs(amount) AS a, "
            "CASE WHEN abs(amount) < 1e11 THEN 10000 WHEN abs(amount) < 1e12 THEN 1000 "
            "WHEN abs(amount) < 1e13 THEN 100 WHEN abs(amount) < 1e14 THEN 10 ELSE 1 END AS s "
            "FROM finance_journalline WHERE entry_id = NEW.id"
        )
        units = f"SELECT currency, sg, s, CAST(round(a * s) AS INTEGER) AS n FROM ({scaled})"
        sums = (
            "SELECT sum(sg * (n / s)) AS whole, sum(sg * (n % s) * (10000 / s)) AS part "
            f"FROM ({units}) GROUP BY currency"
        )
        unbalanced = (
            "(SELECT count(*) FROM finance_journalline WHERE entry_id = NEW.id) < 2 OR EXISTS ("
            f"SELECT 1 FROM ({sums}) WHERE part % 10000 <> 0 OR whole + part / 10000 <> 0)"
        )
        return f"""CREATE TRIGGER finance_journalentry_balanced
BEFORE UPDATE OF status ON finance_journalentry
WHEN NEW.status IN {POSTED} AND ({unbalanced})
BEGIN SELECT RAISE(ABORT, 'ledger.unbalanced: a posted journal entry must balance per currency and have two lines'); END"""

    @staticmethod
    def _status(ref: str) -> str:
        return f"(SELECT status FROM finance_journalentry WHERE id = {ref})"

    def statements(self, entry_columns: list[str]) -> list[str]:
        # SQLite has no row-to-json compare: the column list is taken from the model when the
        # migration runs; a later migration that adds a column must reinstall this trigger
        # (tests/finance/test_db_guards.py fails until it does).
        unchanged = " AND ".join(f'NEW."{c}" IS OLD."{c}"' for c in entry_columns if c != "status")
        return [
            self.balanced_sql(),
            f"""CREATE TRIGGER finance_journalentry_insert_posted
BEFORE INSERT ON finance_journalentry WHEN NEW.status IN {POSTED}
BEGIN SELECT RAISE(ABORT, 'ledger.unbalanced: a journal entry cannot be inserted as posted'); END""",
            f"""CREATE TRIGGER finance_journalentry_immutable
BEFORE UPDATE ON finance_journalentry
WHEN OLD.status IN {POSTED} AND NOT (OLD.status = 'posted' AND NEW.status = 'reversed' AND {unchanged})
BEGIN SELECT RAISE(ABORT, 'ledger.immutable: a posted journal entry cannot be changed'); END""",
            f"""CREATE TRIGGER finance_journalentry_no_delete
BEFORE DELETE ON finance_journalentry
WHEN OLD.status IN {POSTED} AND NOT ledger_maintenance()
BEGIN SELECT RAISE(ABORT, 'ledger.immutable: a posted journal entry cannot be deleted'); END""",
            f"""CREATE TRIGGER finance_journalline_no_insert
BEFORE INSERT ON finance_journalline WHEN {self._status("NEW.entry_id")} IN {POSTED}
BEGIN SELECT RAISE(ABORT, 'ledger.immutable: lines cannot be added to a posted journal entry'); END""",
            f"""CREATE TRIGGER finance_journalline_no_update
BEFORE UPDATE ON finance_journalline
WHEN {self._status("OLD.entry_id")} IN {POSTED} OR {self._status("NEW.entry_id")} IN {POSTED}
BEGIN SELECT RAISE(ABORT, 'ledger.immutable: lines of a posted journal entry cannot be changed'); END""",
            f"""CREATE TRIGGER finance_journalline_no_delete
BEFORE DELETE ON finance_journalline
WHEN {self._status("OLD.entry_id")} IN {POSTED} AND NOT ledger_maintenance()
BEGIN SELECT RAISE(ABORT, 'ledger.immutable: lines of a posted journal entry cannot be deleted'); END""",
        ]

    def install(self, schema_editor, entry_columns: list[str]) -> None:
        for sql in self.statements(entry_columns):
            schema_editor.execute(sql)

    def uninstall(self, schema_editor) -> None:
        for name in self.triggers:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")


_GUARDS: dict[str, type[PostgresGuards] | type[SqliteGuards]] = {
    "postgresql": PostgresGuards,
    "sqlite": SqliteGuards,
}


def guards_for(connection) -> PostgresGuards | SqliteGuards:
    return _GUARDS[guard_dialect(connection)]()  # guard_dialect refuses other backends


def install(apps, schema_editor) -> None:
    entry = apps.get_model("finance", "JournalEntry")
    columns = [f.column for f in entry._meta.concrete_fields]
    guards_for(schema_editor.connection).install(schema_editor, columns)


def uninstall(apps, schema_editor) -> None:
    guards_for(schema_editor.connection).uninstall(schema_editor)


def reinstall_sqlite_balance_check(apps, schema_editor) -> None:
    """Migration 0005: the SQLite balance trigger in exact integers (was a float sum)."""
    if guard_dialect(schema_editor.connection) == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS finance_journalentry_balanced")
        schema_editor.execute(SqliteGuards.balanced_sql())
