"""The audit chain: gapless, linked, append-only in the database, and tampering is found at the
event where it happened, even by someone who switched the triggers off."""

import datetime as dt
import itertools
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from alerts.models import OPEN_STATES, Alert
from audit import db_guards, services, tasks
from audit.canonical import GENESIS_HASH, content_of, event_hash
from audit.models import AuditEvent, ChainHead, Checkpoint, Verification
from config.models import ApiToken
from config.tokens import api_token_create
from tests.audit.helpers import rewrite_chain, tamper, triggers_off
from tests.factories import UserFactory
from tests.threads import run_threads


def record(n: int, prefix: str = "test.event") -> None:
    for i in range(n):
        with transaction.atomic():
            services.audit_record(action=f"{prefix}.{i}", metadata={"i": i})


def verify(**kwargs) -> Verification:
    return services.chain_verify(triggered_by="test", **kwargs)


def chain() -> list[AuditEvent]:
    return list(AuditEvent.objects.order_by("id"))


def test_events_are_numbered_without_gaps_and_linked(db):
    record(5)
    events = chain()
    assert [e.id for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
        assert after.occurred_at >= before.occurred_at
    head = ChainHead.objects.get()
    assert (head.sequence, head.hash) == (5, events[-1].hash)
    assert verify().status == "ok"


def test_a_rolled_back_transaction_leaves_no_event_and_no_gap(db):
    record(1)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        services.audit_record(action="test.doomed")
        1 / 0
    record(1, "test.after")
    assert [(e.id, e.action) for e in chain()] == [(1, "test.event.0"), (2, "test.after.0")]


def test_a_rolled_back_savepoint_drops_only_its_own_events(db):
    with transaction.atomic():
        services.audit_record(action="test.kept")
        try:
            with transaction.atomic():
                services.audit_record(action="test.dropped")
                raise ValueError
        except ValueError:
            pass
        services.audit_record(action="test.kept_too")
    assert [e.action for e in chain()] == ["test.kept", "test.kept_too"]


def test_hashes_survive_the_round_trip_through_the_database(db, make_user):
    """Hostile and awkward values read back byte-identical (jsonb, text, SQLite)."""
    user = make_user(username="zoë")
    services.audit_record(
        action="test.awkward",
        actor=user,
        object_type="finance.account",
        object_id=42,
        object_repr="Caf\u00e9 \x00 \u2603 '\"<script>",
        changes={"amount": [Decimal("1.50"), Decimal("10.000")], "b": [None, True]},
        metadata={
            "z": 1.1,
            "a": {"nested": [1, "2", Decimal("3.0")]},
            "when": dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
            "day": dt.date(2026, 1, 2),
            "big": 2**62,
            "set": {3, 1, 2},
        },
    )
    event = AuditEvent.objects.get()
    assert event_hash(content_of(event)) == event.hash
    assert event.changes["amount"] == ["1.50", "10.000"]  # decimals kept exactly, as text
    assert event.actor_repr == f"zoë (#{user.pk})"
    assert verify().status == "ok"


def test_an_event_outlives_its_actor(db, make_user):
    user = make_user(username="leaver")
    services.audit_record(action="test.by_leaver", actor=user)
    user_id = user.pk
    user.delete()
    event = AuditEvent.objects.get()
    assert event.actor_id == user_id and event.actor_repr == f"leaver (#{user_id})"
    assert verify().status == "ok"


# The database refuses changes ------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET action = 'x' WHERE id = 1",
        "DELETE FROM audit_auditevent WHERE id = 1",
        "DELETE FROM audit_auditevent",
        "UPDATE audit_checkpoint SET hash = 'x'",
        "DELETE FROM audit_checkpoint",
        "UPDATE audit_chainhead SET sequence = 0",
        "DELETE FROM audit_chainhead",
    ],
)
def test_the_database_refuses_to_change_the_trail(db, sql):
    record(2)
    services.checkpoint_create()
    refused = pytest.raises(DatabaseError, match=r"audit\.immutable")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert len(chain()) == 2 and Checkpoint.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["audit_auditevent", "audit_checkpoint", "audit_chainhead"])
def test_postgres_refuses_truncate(db, table):
    record(1)
    refused = pytest.raises(DatabaseError, match=r"audit\.immutable")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table} CASCADE")
    assert len(chain()) == 1


def test_flush_cannot_wipe_the_trail_outside_test_databases(db, settings):
    record(1)
    settings.AUDIT_ALLOW_FLUSH = False
    with pytest.raises((DatabaseError, CommandError)):
        call_command("flush", interactive=False, verbosity=0)
    assert len(chain()) == 1


# Tampering past the triggers is found where it happened -----------------------------------


def test_a_changed_event_is_found(db):
    record(5)
    tamper("UPDATE audit_auditevent SET actor_repr = 'someone else' WHERE id = 3")
    result = verify()
    assert (result.status, result.first_bad_id) == ("broken", 3)
    assert result.problems[0]["code"] == "chain.content_changed"


def test_a_rewritten_and_re_dated_event_is_found(db):
    """A consistent rewrite that moves one event back in time (so that the checkpoint schedule
    would not notice a late signature) breaks the chain's time order."""
    record(5)
    events = {e.id: e for e in AuditEvent.objects.order_by("id")}
    events[3].occurred_at = events[2].occurred_at - dt.timedelta(hours=1)
    prev, rows = events[2].hash, []
    for event_id in (3, 4, 5):
        event = events[event_id]
        event.prev_hash = prev
        prev = event_hash(content_of(event))
        rows.append([event.occurred_at, event.prev_hash, prev, event_id])
    with triggers_off("audit_auditevent", "audit_chainhead") as cursor:
        cursor.executemany(
            "UPDATE audit_auditevent SET occurred_at = %s, prev_hash = %s, hash = %s WHERE id = %s",
            rows,
        )
        cursor.execute("UPDATE audit_chainhead SET hash = %s", [prev])
    result = verify()
    assert (result.status, result.first_bad_id) == ("broken", 3)
    assert result.problems[0]["code"] == "chain.time_reversed"


def test_a_deleted_event_is_found(db):
    record(5)
    tamper("DELETE FROM audit_auditevent WHERE id = 2")
    result = verify()
    assert (result.status, result.first_bad_id) == ("broken", 2)
    assert result.problems[0]["code"] == "chain.missing_event"


def test_a_deleted_and_renumbered_event_is_found(db):
    record(5)
    tamper(
        "DELETE FROM audit_auditevent WHERE id = 2",
        # Two steps: PostgreSQL checks the key row by row, in the table's physical order.
        "UPDATE audit_auditevent SET id = -id WHERE id > 2",
        "UPDATE audit_auditevent SET id = -id - 1 WHERE id < 0",
    )
    result = verify()
    assert (result.status, result.first_bad_id) == ("broken", 2)
    assert result.problems[0]["code"] == "chain.link_broken"


def test_reordered_events_are_found(db):
    record(5)
    tamper(
        "UPDATE audit_auditevent SET id = -1 WHERE id = 3",
        "UPDATE audit_auditevent SET id = 3 WHERE id = 4",
        "UPDATE audit_auditevent SET id = 4 WHERE id = -1",
    )
    result = verify()
    assert (result.status, result.first_bad_id) == ("broken", 3)


def test_events_removed_from_the_end_are_found_by_the_head(db):
    record(5)
    tamper("DELETE FROM audit_auditevent WHERE id > 3")
    result = verify()
    assert (result.status, result.first_bad_id) == ("broken", 4)


def test_a_rewritten_chain_is_caught_by_the_signed_checkpoint(db):
    record(5)
    checkpoint = services.checkpoint_create()
    record(2, "test.later")
    # A superuser changes event 2 and recomputes every hash after it, head included:
    # the chain itself is consistent again, but event 5 no longer has the signed hash.
    rewrite_chain(change_id=2, actor_repr="nobody")
    result = verify()
    assert result.status == "checkpoint_mismatch"
    codes = {
        (p["code"], p.get("checkpoint_id"), p.get("file") is not None) for p in result.problems
    }
    assert ("checkpoint.hash_mismatch", checkpoint.pk, False) in codes  # the database copy
    assert any(c == "checkpoint.hash_mismatch" and f for c, _, f in codes)  # the stored file


def test_checkpoints_deleted_from_the_database_are_caught_by_the_stored_files(db):
    record(3)
    services.checkpoint_create()
    rewrite_chain(change_id=1, actor_repr="nobody")
    tamper("DELETE FROM audit_checkpoint", table="audit_checkpoint")
    result = verify()
    assert result.status == "checkpoint_mismatch"
    codes = [p["code"] for p in result.problems]
    assert "checkpoint.not_in_database" in codes and "checkpoint.hash_mismatch" in codes


def test_a_forged_checkpoint_fails_its_signature(db, settings):
    record(3)
    settings.AUDIT_SIGNING_KEY = "an attacker's guess"
    services.checkpoint_create()
    settings.AUDIT_SIGNING_KEY = "ledgerguard-test-only-audit-signing-key"
    codes = {p["code"] for p in verify().problems}
    assert codes == {"checkpoint.unknown_key"}


def test_checkpoints_are_signed_stored_and_not_repeated_without_new_events(db, settings):
    record(2)
    checkpoint = services.checkpoint_create()
    assert services.checkpoint_create() is None
    document = json.loads(Path(checkpoint.location).read_text())
    assert document["sequence"] == 2 and document["hash"] == chain()[-1].hash
    assert document["signature"] == checkpoint.signature
    assert str(settings.BACKUP_DIR) in checkpoint.location
    assert verify().status == "ok"


def open_alert(key: str) -> Alert | None:
    return Alert.objects.filter(source="audit", key=key, state__in=OPEN_STATES).first()


def test_checkpoints_need_the_signing_key(db, settings):
    record(1)
    settings.AUDIT_SIGNING_KEY = ""
    assert tasks.checkpoint() is None
    assert open_alert("checkpoint_unsigned").severity == "error"


# The command, the schedule and the alert -----------------------------------------------


def test_verify_command_exits_1_with_the_first_bad_event(db, capsys):
    record(4)
    call_command("verify_audit_chain")
    assert "OK" in capsys.readouterr().out
    tamper("UPDATE audit_auditevent SET metadata = '{\"i\": 99}' WHERE id = 3")
    with pytest.raises(CommandError, match="broken at event 3") as excinfo:
        call_command("verify_audit_chain")
    assert excinfo.value.returncode == 1
    call_command("verify_audit_chain", "--to", "2")  # the part before the damage is fine


def test_scheduled_verification_alerts_and_resolves_when_the_chain_is_repaired(db):
    record(3)
    original = AuditEvent.objects.values_list("actor_repr", flat=True).get(id=2)
    tamper("UPDATE audit_auditevent SET actor_repr = 'mallory' WHERE id = 2")
    assert tasks.verify_chain()["status"] == "broken"
    alert = open_alert("chain_broken")
    assert alert.severity == "critical" and alert.details["first_bad_id"] == 2
    tamper("UPDATE audit_auditevent SET actor_repr = %s WHERE id = 2", params=[original])
    assert tasks.verify_chain()["status"] == "ok"
    assert open_alert("chain_broken") is None


# Concurrency ---------------------------------------------------------------------------

THREADS, PER_THREAD = 8, 15


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_leave_one_unbroken_chain():
    """Eight threads commit 1-3 events per transaction at once: no fork, no gap, none lost."""

    def writer(t: int) -> None:
        for i in range(PER_THREAD):
            with transaction.atomic():
                for j in range(1 + (t + i) % 3):
                    meta = {"t": t, "i": i, "j": j}
                    services.audit_record(action="test.concurrent", metadata=meta)

    errors = run_threads(writer, THREADS)
    assert not errors
    expected = sum(1 + (t + i) % 3 for t in range(THREADS) for i in range(PER_THREAD))
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    assert ids == list(range(1, expected + 1))
    written = {
        (m["t"], m["i"], m["j"]) for m in AuditEvent.objects.values_list("metadata", flat=True)
    }
    assert len(written) == expected  # every event, once
    result = verify()
    assert (result.status, result.events_checked) == ("ok", expected)


def test_a_range_beyond_the_chain_is_refused_not_reported_broken(db, auditor, api):
    record(3)
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_audit_chain", "--from", "99")
    assert excinfo.value.returncode == 2
    response = api.as_user(auditor).post(
        "/api/v1/audit/verifications/", {"from_id": 9223372036854775807}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("audit.invalid_range", "invalid")
    assert open_alert("chain_broken") is None and not Verification.objects.exists()


@pytest.mark.parametrize("table", ["audit_auditevent", "audit_checkpoint", "audit_chainhead"])
def test_replace_into_cannot_rewrite_a_row(db, table):
    """SQLite's INSERT OR REPLACE deletes without firing delete triggers; PostgreSQL's upsert
    is an UPDATE. Either way the row stays as it was."""
    record(2)
    services.checkpoint_create()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY id LIMIT 1")
        columns = [c[0] for c in cursor.description]
        row = list(cursor.fetchone())
    before = dict(zip(columns, row, strict=True))
    for name in ("hash", "sequence", "action"):
        if name in before:
            row[columns.index(name)] = 0 if name == "sequence" else "forged"
    marks = ", ".join(["%s"] * len(row))
    if connection.features.guard_dialect == "postgresql":
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != "id")
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
        sql += f"ON CONFLICT (id) DO UPDATE SET {updates}"
    else:
        sql = f"REPLACE INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    refused = pytest.raises(DatabaseError, match=r"audit\.immutable")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, row)
    assert verify().status == "ok"


def test_a_manual_savepoint_rolled_back_drops_its_events(db):
    with transaction.atomic():
        services.audit_record(action="test.kept")
        sid = transaction.savepoint()
        services.audit_record(action="test.undone")
        transaction.savepoint_rollback(sid)
    assert [e.action for e in chain()] == ["test.kept"]


def test_hostile_strings_and_numbers_are_stored_and_verify(db):
    services.audit_record(
        action="test.hostile",
        object_repr="lone \ud800 surrogate",
        metadata={"nul\x00key": "v", "exp": Decimal("1E+2"), "neg": Decimal("-0.10")},
    )
    event = AuditEvent.objects.get()
    assert event.metadata["exp"] == "100" and event.metadata["neg"] == "-0.10"
    assert verify().status == "ok"


def test_every_guard_is_installed_after_all_migrations(db):
    """A later migration that rebuilds an audit table (SQLite does that for many schema
    changes) would drop its triggers silently: this fails until it reinstalls them."""
    with connection.cursor() as cursor:
        if connection.features.guard_dialect == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'O' "
                "AND tgrelid::regclass::text LIKE 'audit_%%'"
            )
            expected = {
                f"{t}_{s}" for t in db_guards.IMMUTABLE for s in ("immutable", "no_truncate")
            }
            expected |= {"audit_chainhead_forward", "audit_chainhead_no_truncate"}
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            expected = set(db_guards.SQLITE_TRIGGERS)
        installed = {row[0] for row in cursor.fetchall()}
    assert expected <= installed, expected - installed


@pytest.mark.django_db(transaction=True)
def test_a_failing_append_rolls_the_change_back(monkeypatch):
    """If the events cannot join the chain at commit, the transaction does not commit: no
    change without its event."""
    user = UserFactory()

    def broken(connection, contents):
        raise RuntimeError("disk full")

    monkeypatch.setattr("audit.chain.append", broken)
    with pytest.raises(DatabaseError, match="could not be appended"):
        api_token_create(user=user, name="laptop")
    assert not ApiToken.objects.exists()
    monkeypatch.undo()
    api_token_create(user=user, name="laptop")  # the connection is usable again
    assert ApiToken.objects.count() == 1 and verify().status == "ok"
