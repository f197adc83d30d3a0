"""docs/disaster-recovery.md, run step by step: a primary with real books is backed up, then
destroyed, and every command block of the runbook is run in order against a new, empty
database. At the end the books in the new database are the books of the backup."""

import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from backups.engines.base import DatabaseTarget

RUNBOOK = Path(settings.BASE_DIR) / "docs" / "disaster-recovery.md"
BLOCK = re.compile(r"```sh\n(# step: (?P<step>[^\n]+)\n(?P<body>.*?))```", re.S)
# The runbook's first block is a fill-in of the old host's values: the test sets them.
FILL_IN = "environment (fill in the real values)"

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def runbook_steps() -> list[tuple[str, str]]:
    return [(m["step"], m["body"]) for m in BLOCK.finditer(RUNBOOK.read_text())]


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


class Databases:
    """Primary and new databases on the engine the suite runs on, made and removed here."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.postgres = connection.features.guard_dialect == "postgresql"
        self.made: list[str] = []

    def url(self, name: str) -> str:
        if not self.postgres:
            return f"sqlite:///{self.tmp / f'{name}.sqlite3'}"
        like = DatabaseTarget.from_settings(settings.DATABASES["default"], "postgresql")
        db = f"lg_dr_{name}_{uuid.uuid4().hex[:8]}"
        self._admin(f'CREATE DATABASE "{db}"')
        self.made.append(db)
        return DatabaseTarget(
            vendor="postgresql",
            name=db,
            host=like.host,
            port=like.port,
            user=like.user,
            password=like.password,
        ).url()

    def destroy(self, url: str) -> None:
        target = DatabaseTarget.from_url(url)
        if self.postgres:
            self._admin(f'DROP DATABASE "{target.name}" WITH (FORCE)')
            self.made.remove(target.name)
        else:
            Path(target.name).unlink()

    def _admin(self, sql: str) -> None:
        like = DatabaseTarget.from_settings(settings.DATABASES["default"], "postgresql")
        with psycopg.connect(
            host=like.host,
            port=like.port or None,
            user=like.user,
            password=like.password or None,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(sql)

    def cleanup(self) -> None:
        for db in list(self.made):
            self._admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def journal_entries(url: str) -> int:
    return int(one_value(url, "SELECT count(*) FROM finance_journalentry"))


def one_value(url: str, sql: str) -> Any:
    target = DatabaseTarget.from_url(url)
    if target.vendor == "sqlite":
        with sqlite3.connect(target.name) as db:
            return db.execute(sql).fetchone()[0]
    with psycopg.connect(
        host=target.host,
        port=target.port or None,
        user=target.user,
        password=target.password or None,
        dbname=target.name,
    ) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return row[0]


def test_the_runbook_recovers_the_books_into_a_new_server(tmp_path):
    steps = runbook_steps()
    assert steps[0][0] == FILL_IN
    dbs = Databases(tmp_path)
    backup_dir = tmp_path / "backups"
    env = {
        **os.environ,
        "BACKUP_DIR": str(backup_dir),
        "AUDIT_ALLOW_FLUSH": "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "RECOVERY_DIR": str(tmp_path / "recovery"),
    }
    env.pop("DATABASE_MIGRATE_URL", None)
    try:
        # The primary, with a demo company's books, its signed checkpoints, and a backup.
        primary = {**env, "DATABASE_URL": dbs.url("primary")}
        manage(primary, "migrate", "--no-input")
        manage(primary, "seed_demo", "--days", "30")
        manage(primary, "audit_checkpoint")
        entries = journal_entries(primary["DATABASE_URL"])
        assert entries > 0
        manage(primary, "backup", "--verify")
        # The primary is gone.
        dbs.destroy(primary["DATABASE_URL"])
        shutil.rmtree(backup_dir / "audit-checkpoints", ignore_errors=True)

        new = {**env, "DATABASE_URL": dbs.url("new")}
        # One shell session, as the person on call has: a variable set in one step (the
        # backup's id) is there in the next. Each step announces itself, so that a failure
        # names the step.
        script = "\n".join(f"echo '::step {step}'\n{body}" for step, body in steps[1:])
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=settings.BASE_DIR,
            env={**new, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        ran = re.findall(r"^::step (.+)$", done.stdout, re.M)
        assert done.returncode == 0, f"step {ran[-1]!r} failed:\n{done.stdout}\n{done.stderr}"
        assert ran == [step for step, _ in steps[1:]]
        assert journal_entries(new["DATABASE_URL"]) == entries
        # The restored backup's own row, RUNNING as of its snapshot, says how it ended (its
        # manifest): the new server can restore, drill and download it at once.
        statuses = one_value(
            new["DATABASE_URL"],
            "SELECT count(*) FROM backups_backup WHERE status = 'running'",
        )
        assert statuses == 0
        target = DatabaseTarget.from_url(new["DATABASE_URL"])
        if target.vendor == "sqlite":
            assert stat.S_IMODE(Path(target.name).stat().st_mode) == 0o600
    finally:
        dbs.cleanup()
