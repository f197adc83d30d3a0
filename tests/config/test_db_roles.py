"""The application's database role apart from the tables' owner (config/db/roles.py).

The owner of a table can `ALTER TABLE ... DISABLE TRIGGER`, TRUNCATE and DROP it, whatever the
audit trail's triggers say. With DATABASE_MIGRATE_URL, `migrate` runs as the owner and grants the
application's role only what it needs; these tests show the grants, and that the application
works under them while the tampering from the security review fails with permission errors.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from psycopg import sql

from audit.checks import app_role_cannot_disable_guards
from audit.db_guards import APP_ROLE_PRIVILEGES
from config.db.roles import app_role_grant, grants_for

ROOT = Path(__file__).resolve().parents[2]


def run_sql(*statements: str) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def w002() -> list[str]:
    return [m.msg for m in app_role_cannot_disable_guards(None, databases=["default"])]


def test_grant_app_role_on_sqlite_says_there_is_nothing_to_do(db, capsys):
    if connection.features.guard_dialect != "sqlite":
        pytest.skip("SQLite only")
    call_command("grant_app_role", "--role", "anyone")
    assert "SQLite has no database roles" in capsys.readouterr().out
    assert w002() == []


def test_a_migrate_url_is_refused_with_sqlite():
    env = os.environ | {
        "DATABASE_URL": "sqlite:///var/ledgerguard-roles.sqlite3",
        "DATABASE_MIGRATE_URL": "sqlite:///var/ledgerguard-roles.sqlite3",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "DATABASE_MIGRATE_URL and DATABASE_URL must both be postgres://" in result.stderr


@pytest.mark.postgres
def test_grant_app_role_prints_append_only_grants_for_the_audit_tables(db, capsys):
    run_sql("CREATE ROLE lg_test_app NOLOGIN")
    call_command("grant_app_role", "--role", "lg_test_app", "--print")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "BEGIN;" and out[-1] == "COMMIT;"
    assert (
        'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "public" TO "lg_test_app";'
        in out
    )
    assert 'REVOKE ALL ON "public"."audit_auditevent" FROM "lg_test_app";' in out
    assert 'GRANT SELECT, INSERT ON "public"."audit_auditevent" TO "lg_test_app";' in out
    assert 'GRANT SELECT, INSERT ON "public"."audit_checkpoint" TO "lg_test_app";' in out
    assert 'GRANT SELECT, INSERT, UPDATE ON "public"."audit_chainhead" TO "lg_test_app";' in out
    assert 'GRANT SELECT ON "public"."django_migrations" TO "lg_test_app";' in out
    assert any(s.startswith("ALTER DEFAULT PRIVILEGES FOR ROLE") for s in out)
    with connection.cursor() as cursor:  # --print changed nothing
        cursor.execute("SELECT has_table_privilege('lg_test_app', 'finance_account', 'SELECT')")
        assert cursor.fetchone() == (False,)


@pytest.mark.postgres
def test_grant_app_role_refuses_what_would_not_protect_anything(db):
    me = connection.settings_dict["USER"]
    with pytest.raises(CommandError, match="would grant to itself"):
        call_command("grant_app_role", "--role", me)
    with pytest.raises(CommandError, match="there is no database role"):
        call_command("grant_app_role", "--role", "lg_nobody_at_all")
    run_sql(
        "CREATE ROLE lg_test_owner NOLOGIN", "ALTER TABLE finance_account OWNER TO lg_test_owner"
    )
    with pytest.raises(CommandError, match="REASSIGN OWNED BY"):
        call_command("grant_app_role", "--role", "lg_test_owner")


@pytest.mark.postgres
def test_deploy_warning_names_what_the_connected_role_can_do_to_the_audit_tables(db):
    # The test database's user is a superuser.
    assert w002() and "is a superuser" in w002()[0]
    run_sql("CREATE ROLE lg_test_app NOLOGIN", "CREATE ROLE lg_test_sloppy NOLOGIN")
    app_role_grant(connection, role="lg_test_app", limited=APP_ROLE_PRIVILEGES)
    run_sql("GRANT ALL ON ALL TABLES IN SCHEMA public TO lg_test_sloppy")
    grants = grants_for(connection)
    try:
        run_sql("SET ROLE lg_test_app")
        assert grants.excess(connection, limited=APP_ROLE_PRIVILEGES) == []
        assert w002() == []
        run_sql("RESET ROLE", "SET ROLE lg_test_sloppy")
        assert grants.excess(connection, limited=APP_ROLE_PRIVILEGES) == [
            "may UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER audit_auditevent",
            "may DELETE, TRUNCATE, REFERENCES, TRIGGER audit_chainhead",
            "may UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER audit_checkpoint",
        ]
        # A member of the owner's role can act as the owner (SET ROLE), so it counts as one.
        run_sql("RESET ROLE", "CREATE ROLE lg_test_member NOLOGIN")
        run_sql(f"GRANT {connection.settings_dict['USER']} TO lg_test_member")
        run_sql("SET ROLE lg_test_member")
        assert grants.excess(connection, limited=APP_ROLE_PRIVILEGES) == [
            "owns audit_auditevent",
            "owns audit_chainhead",
            "owns audit_checkpoint",
        ]
    finally:
        run_sql("RESET ROLE")


# --- the application as a role that does not own its tables, end to end --------------------

APP_WORK = """
import json
from django.core.management import call_command
from django.test import Client

client = Client(HTTP_HOST="localhost")
ready = client.get("/health/ready")
login = client.post("/admin/login/", {"username": "admin", "password": "ledgerguard-demo"})
admin = client.get("/admin/")
call_command("clearsessions")
print(json.dumps({
    "ready": {name: c["status"] for name, c in ready.json()["checks"].items()},
    "login": login.status_code,
    "admin": admin.status_code,
}))
"""

# Tampering that the application's role must not be able to do: (statement, expected SQLSTATE
# class). 42501 insufficient_privilege (includes "must be owner"); 23000 the trigger's refusal.
REFUSED = [
    ("ALTER TABLE audit_auditevent DISABLE TRIGGER ALL", "42501"),
    ("ALTER TABLE audit_auditevent DISABLE TRIGGER USER", "42501"),
    ("ALTER TABLE audit_checkpoint DISABLE TRIGGER ALL", "42501"),
    ("ALTER TABLE audit_chainhead DISABLE TRIGGER ALL", "42501"),
    ("DROP TRIGGER audit_auditevent_immutable ON audit_auditevent", "42501"),
    ("SET session_replication_role = replica", "42501"),
    ("UPDATE audit_auditevent SET actor_repr = 'mallory' WHERE id = 2", "42501"),
    ("DELETE FROM audit_auditevent WHERE id = 2", "42501"),
    ("TRUNCATE audit_auditevent", "42501"),
    ("UPDATE audit_checkpoint SET hash = repeat('0', 64)", "42501"),
    ("DELETE FROM audit_checkpoint", "42501"),
    ("TRUNCATE audit_checkpoint", "42501"),
    ("DELETE FROM audit_chainhead", "42501"),
    ("TRUNCATE audit_chainhead", "42501"),
    ("DROP TABLE audit_auditevent", "42501"),
    ("DROP TABLE audit_checkpoint", "42501"),
    ("ALTER TABLE audit_auditevent OWNER TO CURRENT_USER", "42501"),
    ("ALTER TABLE finance_journalline DISABLE TRIGGER ALL", "42501"),
    ("TRUNCATE finance_journalline", "42501"),
    ("DROP TABLE finance_account", "42501"),
    ("UPDATE django_migrations SET name = name", "42501"),
    # Allowed to move the head, but the trigger still refuses moving it back.
    ("UPDATE audit_chainhead SET sequence = 0", "23000"),
]


class SeparateRoles:
    """A database of its own on the test server, owned by one new role and used by another, and
    the environment the application's processes run in there."""

    def __init__(self, tmp_path: Path) -> None:
        self.admin = connection.settings_dict  # a superuser on the test server
        suffix = secrets.token_hex(4)
        self.owner, self.app = f"lg_owner_{suffix}", f"lg_app_{suffix}"
        self.name = f"lg_roles_{suffix}"
        self.passwords = {
            self.owner: secrets.token_urlsafe(12),
            self.app: secrets.token_urlsafe(12),
        }
        self.host, self.port = self.admin["HOST"] or "localhost", self.admin["PORT"] or 5432
        self.env = os.environ | {
            "DATABASE_URL": self.url(self.app),
            "DATABASE_MIGRATE_URL": self.url(self.owner),
            "BACKUP_DIR": str(tmp_path / "backups"),
            "AUDIT_ALLOW_FLUSH": "0",
            "Q_POLL": "0.2",
            "Q_GUARD_CYCLE": "30",  # the scheduler runs on the first guard cycle
            "Q_WORKERS": "1",
        }

    def url(self, role: str) -> str:
        return f"postgres://{role}:{self.passwords[role]}@{self.host}:{self.port}/{self.name}"

    def connect(self, role: str | None = None, dbname: str | None = None):
        """As `role`, else as the test server's superuser; to this database unless told."""
        if role:
            user, password = role, self.passwords[role]
        else:
            user, password = self.admin["USER"], self.admin["PASSWORD"]
        return psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=dbname or self.name,
            user=user,
            password=password,
            autocommit=True,
        )

    def manage(
        self, *args: str, role: str | None = None, ok: bool = True
    ) -> subprocess.CompletedProcess:
        """`manage.py ARGS` as `role` (the application's unless told); it must succeed if `ok`."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env | {"DATABASE_URL": self.url(role or self.app)},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if ok:
            assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
        return result


@contextmanager
def separate_roles(tmp_path: Path) -> Iterator[SeparateRoles]:
    """The two roles and their database, created as the superuser and dropped afterwards
    whatever happens."""
    roles = SeparateRoles(tmp_path)
    with roles.connect(dbname=roles.admin["NAME"]) as su:
        for role in (roles.owner, roles.app):
            create = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}")
            su.execute(create.format(sql.Identifier(role), sql.Literal(roles.passwords[role])))
        create = sql.SQL("CREATE DATABASE {} OWNER {}")
        su.execute(create.format(sql.Identifier(roles.name), sql.Identifier(roles.owner)))
    try:
        yield roles
    finally:
        with roles.connect(dbname=roles.admin["NAME"]) as su:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            su.execute(drop.format(sql.Identifier(roles.name)))
            for role in (roles.app, roles.owner):
                su.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def assert_migrate_runs_as_the_owner(roles: SeparateRoles) -> None:
    migrated = roles.manage("migrate", "--noinput")
    assert f"Migrating as '{roles.owner}'" in migrated.stdout
    assert f"Granted '{roles.app}'" in migrated.stdout
    with roles.connect() as su:
        owners = su.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        assert owners == [(roles.owner,)]


def assert_normal_work_succeeds(roles: SeparateRoles) -> None:
    """Normal work, as the application's role."""
    manage = roles.manage
    assert "Seeded" in manage("seed_demo", "--days", "30").stdout
    manage("sync_schedules")
    assert "Checkpoint at #" in manage("audit_checkpoint").stdout
    assert manage("verify_audit_chain").stdout.strip().endswith("OK")
    assert "PASS  audit.checkpoints_recent" in manage("run_checks", "--tag", "audit").stdout
    # Every check runs under the role (catalogs, migration history, raw SQL); the only
    # failures are the scheduler heartbeat, since no worker has run yet, and the backups
    # control's, since no backup or drill has been taken yet.
    every = json.loads(manage("run_checks", "--json", ok=False).stdout)
    statuses = {r["check"]: r["status"] for r in every["results"]}
    assert "error" not in statuses.values(), statuses
    assert {c for c, status in statuses.items() if status != "pass"} == {
        "integrity.scheduler_alive",
        "backups.last_backup_recent",
        "backups.drill_recent",
    }
    work = json.loads(manage("shell", "-c", APP_WORK).stdout.strip().splitlines()[-1])
    assert work["ready"]["database"] == work["ready"]["migrations"] == "ok"
    assert (work["login"], work["admin"]) == (302, 200)
    deploy = manage("check", "--deploy", "--database", "default")
    assert "audit.W002" not in deploy.stdout + deploy.stderr
    # Both URLs naming the owner is the setup this replaces: warned about.
    as_owner = manage("check", "--deploy", "--database", "default", role=roles.owner)
    assert "role owns audit_auditevent" in as_owner.stderr


def assert_a_worker_signs_what_was_appended(roles: SeparateRoles, tmp_path: Path) -> None:
    """The scheduler and a worker (django-q2's database broker) under the same role: the
    hourly checkpoint, due now, signs what the commands before appended."""
    with roles.connect(roles.app) as db:
        db.execute("UPDATE django_q_schedule SET next_run = now() + interval '1 day'")
        db.execute(
            "UPDATE django_q_schedule SET next_run = now() - interval '1 second' "
            "WHERE name = 'audit.checkpoint'"
        )
        signed = db.execute("SELECT max(sequence) FROM audit_checkpoint").fetchone()[0]
        head = db.execute("SELECT sequence FROM audit_chainhead").fetchone()[0]
    assert head > signed
    newest, cluster_log = run_cluster_until_signed(roles, tmp_path, signed=signed, head=head)
    assert newest >= head, cluster_log[-3000:]


def run_cluster_until_signed(
    roles: SeparateRoles, tmp_path: Path, *, signed: int, head: int
) -> tuple[int, str]:
    """Run `qcluster` as the application's role until a checkpoint reaches `head` (90 s at
    most); return the newest checkpoint's sequence and the cluster's log."""
    log = (tmp_path / "qcluster.log").open("w+")
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=roles.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline, newest = time.monotonic() + 90, signed
        while time.monotonic() < deadline and newest < head:
            assert cluster.poll() is None, "qcluster exited early"
            time.sleep(0.5)
            with roles.connect(roles.app) as db:
                newest = db.execute("SELECT max(sequence) FROM audit_checkpoint").fetchone()[0]
    finally:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait(timeout=30)
        log.seek(0)
        cluster_log = log.read()
        log.close()
    return newest, cluster_log


def assert_tampering_is_refused(roles: SeparateRoles) -> None:
    """The tampering from the security review, as the application's role."""
    with roles.connect(roles.app) as db:
        events = db.execute("SELECT count(*), max(hash) FROM audit_auditevent").fetchone()
        for statement, sqlstate in REFUSED:
            with pytest.raises(psycopg.Error) as refused:
                db.execute(statement)
            assert refused.value.sqlstate == sqlstate, (statement, str(refused.value))
        after = db.execute("SELECT count(*), max(hash) FROM audit_auditevent").fetchone()
        assert after == events
    # A flush, as the application's role, stops at the first table it may not truncate.
    flushed = roles.manage("flush", "--noinput", ok=False)
    assert flushed.returncode != 0
    with roles.connect(roles.app) as db:
        assert db.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] >= events[0]
        assert db.execute("SELECT count(*) FROM finance_journalentry").fetchone()[0] > 0
    assert roles.manage("verify_audit_chain").stdout.strip().endswith("OK")


def assert_migrating_again_covers_later_tables(roles: SeparateRoles) -> None:
    """Migrating again changes nothing, and tables the owner creates later are covered."""
    roles.manage("migrate", "--noinput")
    with roles.connect(roles.owner) as db:
        db.execute("CREATE TABLE lg_later (id int)")
    with roles.connect(roles.app) as db:
        db.execute("INSERT INTO lg_later VALUES (1)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("TRUNCATE lg_later")
        privileges = db.execute(
            "SELECT has_table_privilege('audit_auditevent', 'UPDATE'), "
            "has_table_privilege('finance_account', 'UPDATE')"
        ).fetchone()
        assert privileges == (False, True)


@pytest.mark.postgres
@pytest.mark.e2e
def test_the_application_role_works_but_cannot_switch_off_the_audit_guards(tmp_path):
    """One session in sequence: migrate as the owner, work as the application's role (commands,
    pages, a worker), then the tampering, then a second migrate."""
    with separate_roles(tmp_path) as roles:
        assert_migrate_runs_as_the_owner(roles)
        assert_normal_work_succeeds(roles)
        assert_a_worker_signs_what_was_appended(roles, tmp_path)
        assert_tampering_is_refused(roles)
        assert_migrating_again_covers_later_tables(roles)
