"""The audit chain: events are appended gapless and linked, exactly those of the transactions
(and savepoints) that commit, under concurrent writers too, and hashes survive the database."""

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction

from audit import services
from audit.canonical import GENESIS_HASH, content_of, event_hash
from audit.models import AuditEvent, ChainHead
from config.models import ApiToken
from config.tokens import api_token_create
from tests.audit.helpers import chain, record, verify
from tests.factories import UserFactory
from tests.threads import run_threads


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
