"""The fast verification (PostgreSQL: binary chunks, the per-row spelling, segments in worker
processes) finds exactly what the generic walk finds: the same status, first bad event,
problems and counts, for every kind of tampering, wherever it falls against a segment's
boundary. On SQLite both sides are the generic walk, which these tests then exercise alone.
"""

import logging
import sys

import pytest
from django.db import connection

from audit import services, signals
from audit.canonical import content_of, event_hash
from audit.models import AuditEvent
from audit.services import verification
from tests.audit.helpers import record, redate, rewrite_chain, tamper

EVENTS = 9
WORKERS = 3  # segments #1-3, #4-6, #7-9

# Another hash than the row's (the column is unique, and a changed first digit could repeat it).
OTHER_HASH = "CASE WHEN hash LIKE 'e%' THEN 'f' ELSE 'e' END || substr(hash, 2)"
# Tampering as a superuser would, at event k (k-1 and k+1 exist unless k is at an end).
TAMPERING = {
    "changed field": ["UPDATE audit_auditevent SET actor_repr = 'mallory' WHERE id = {k}"],
    "changed metadata": ["UPDATE audit_auditevent SET metadata = '{{\"i\": 99}}' WHERE id = {k}"],
    "changed hash": [
        "UPDATE audit_auditevent SET hash = " + OTHER_HASH + " WHERE id = {k}",
    ],
    "deleted row": ["DELETE FROM audit_auditevent WHERE id = {k}"],
    "deleted from here to the end": ["DELETE FROM audit_auditevent WHERE id >= {k}"],
    "inserted row": [
        # Every event from k on moves up one; a copy of the old event k, with another hash,
        # takes its place.
        "UPDATE audit_auditevent SET id = -id WHERE id >= {k}",
        "UPDATE audit_auditevent SET id = -id + 1 WHERE id < 0",
        "INSERT INTO audit_auditevent (id, schema_version, occurred_at, actor_id, actor_repr, "
        "ip, user_agent, request_id, action, object_type, object_id, object_repr, changes, "
        "metadata, prev_hash, hash) SELECT id - 1, schema_version, occurred_at, actor_id, "
        "actor_repr, ip, user_agent, request_id, action, object_type, object_id, object_repr, "
        "changes, metadata, prev_hash, " + OTHER_HASH + " FROM audit_auditevent "
        "WHERE id = {k} + 1",
    ],
    "reordered rows": [
        "UPDATE audit_auditevent SET id = -1 WHERE id = {k}",
        "UPDATE audit_auditevent SET id = {k} WHERE id = {k} + 1",
        "UPDATE audit_auditevent SET id = {k} + 1 WHERE id = -1",
    ],
}


def summary(v) -> tuple:
    return (v.status, v.first_bad_id, v.events_checked, v.checkpoints_checked, v.problems)


@pytest.fixture
def quiet(monkeypatch):
    """Verifications leave no audit event of their own, nor raise an alert (which records one),
    so that two runs see the same chain."""
    monkeypatch.setattr(verification, "_record", lambda v: None)
    monkeypatch.setattr(signals.chain_verified, "send", lambda **kwargs: [])


def verify_both_ways(monkeypatch, **kwargs):
    """This engine's verification and the generic walk's: they must agree entirely."""
    fast = services.chain_verify(triggered_by="test", **kwargs)
    with monkeypatch.context() as m:
        m.setattr(verification, "_WALKERS", {})
        generic = services.chain_verify(triggered_by="test", **kwargs)
    assert summary(fast) == summary(generic)
    return fast


def in_workers(monkeypatch, workers: int = WORKERS) -> list[int]:
    """Walk in `workers` processes from now on; the list returned fills with the number of
    segments of each walk the workers finished (none when they failed and this process
    walked instead)."""
    monkeypatch.setattr(verification, "PARALLEL_MIN_EVENTS", 1)
    monkeypatch.setattr(verification, "PARALLEL_WORKERS", workers)
    finished, walk = [], verification._walk_in_workers

    def counted(*args):
        segments = walk(*args)
        finished.append(len(segments))
        return segments

    monkeypatch.setattr(verification, "_walk_in_workers", counted)
    return finished


def forge_inserted(k: int) -> None:
    """An event inserted before k with a correct hash of its own: event k no longer links."""
    events = list(AuditEvent.objects.filter(id__gte=k - 1).order_by("id"))
    forged = events[1]
    forged.actor_repr, forged.prev_hash = "forger", events[0].hash
    forged_hash = event_hash(content_of(forged))
    tamper(
        f"UPDATE audit_auditevent SET id = -id WHERE id >= {k}",
        "UPDATE audit_auditevent SET id = -id + 1 WHERE id < 0",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (id, schema_version, occurred_at, actor_id, "
            "actor_repr, ip, user_agent, request_id, action, object_type, object_id, "
            "object_repr, changes, metadata, prev_hash, hash) SELECT %s, schema_version, "
            "occurred_at, actor_id, 'forger', ip, user_agent, request_id, action, object_type, "
            "object_id, object_repr, changes, metadata, %s, %s FROM audit_auditevent "
            "WHERE id = %s",
            [k, events[0].hash, forged_hash, k + 1],
        )


# In this process (ranges below PARALLEL_MIN_EVENTS, and inside a transaction) --------------


@pytest.mark.parametrize("kind", TAMPERING)
@pytest.mark.parametrize("k", [2, 5])
def test_the_fast_walk_finds_what_the_generic_walk_finds(db, quiet, monkeypatch, kind, k):
    record(EVENTS)
    tamper(*(sql.format(k=k) for sql in TAMPERING[kind]))
    result = verify_both_ways(monkeypatch)
    assert result.status == "broken"
    assert result.first_bad_id in (k, k + 1)


def test_an_intact_chain_and_its_ranges_verify_the_same_both_ways(db, quiet, monkeypatch):
    record(EVENTS)
    services.checkpoint_create()
    assert verify_both_ways(monkeypatch).status == "ok"
    assert verify_both_ways(monkeypatch, from_id=4, to_id=7).events_checked == 4
    tamper("DELETE FROM audit_auditevent WHERE id = 3")
    assert verify_both_ways(monkeypatch, from_id=4).first_bad_id == 3  # the trusted one is gone


def test_a_consistent_rewrite_is_caught_by_the_checkpoint_both_ways(db, quiet, monkeypatch):
    record(5)
    services.checkpoint_create()
    rewrite_chain(change_id=2, actor_repr="nobody")
    assert verify_both_ways(monkeypatch).status == "checkpoint_mismatch"


def test_a_re_dated_rewrite_is_found_both_ways(db, quiet, monkeypatch):
    record(5)
    redate(3)
    result = verify_both_ways(monkeypatch)
    assert (result.first_bad_id, result.problems[0]["code"]) == (3, "chain.time_reversed")


def test_an_inserted_event_with_a_correct_hash_is_found_both_ways(db, quiet, monkeypatch):
    record(5)
    forge_inserted(3)
    result = verify_both_ways(monkeypatch)
    assert (result.first_bad_id, result.problems[0]["code"]) == (4, "chain.link_broken")


# In worker processes, segment by segment (PostgreSQL; the workers see committed rows only) ----


def test_segments_cover_the_range_once_in_order():
    assert verification._segments(1, 9, 3) == [(1, 3), (4, 6), (7, 9)]
    assert verification._segments(5, 14, 3) == [(5, 8), (9, 11), (12, 14)]
    assert verification._segments(1, 2, 2) == [(1, 1), (2, 2)]


@pytest.mark.postgres
@pytest.mark.parametrize("kind", TAMPERING)
@pytest.mark.parametrize("k", [3, 4, 7])  # the last of segment 1, the first of 2 and of 3
def test_workers_find_what_one_walk_finds_at_segment_boundaries(
    transactional_db, quiet, monkeypatch, kind, k
):
    record(EVENTS)
    tamper(*(sql.format(k=k) for sql in TAMPERING[kind]))
    finished = in_workers(monkeypatch)
    result = verify_both_ways(monkeypatch)
    assert result.status == "broken" and result.first_bad_id in (k, k + 1)
    assert finished == [WORKERS]


@pytest.mark.postgres
@pytest.mark.parametrize("k", [4, 7])
def test_workers_find_a_re_dated_rewrite_and_a_forged_insertion_at_a_boundary(
    transactional_db, quiet, monkeypatch, k
):
    record(EVENTS)
    redate(k)
    in_workers(monkeypatch)
    assert verify_both_ways(monkeypatch).first_bad_id == k
    forge_inserted(k - 1)  # event k-1 is new: the old k-1, now k, no longer links
    assert verify_both_ways(monkeypatch).first_bad_id == k


@pytest.mark.postgres
def test_workers_check_an_intact_chain_ranges_and_checkpoints(transactional_db, quiet, monkeypatch):
    record(5)
    services.checkpoint_create()  # signs #5, in segment 2
    record(EVENTS - 5)
    finished = in_workers(monkeypatch)
    result = verify_both_ways(monkeypatch)
    assert finished == [WORKERS]
    assert (result.status, result.events_checked, result.checkpoints_checked) == ("ok", 9, 2)
    assert verify_both_ways(monkeypatch, from_id=2, to_id=8).status == "ok"
    rewrite_chain(change_id=4, actor_repr="nobody")
    assert verify_both_ways(monkeypatch).status == "checkpoint_mismatch"


@pytest.mark.postgres
def test_a_range_whose_first_segment_is_empty_starts_from_the_trusted_event(
    transactional_db, quiet, monkeypatch
):
    """Events #4-#6 gone: the segments #4-#5 and #6-#7 both start from #3, the event before
    the range, and the second finds #4 missing."""
    record(EVENTS)
    tamper("DELETE FROM audit_auditevent WHERE id BETWEEN 4 AND 6")
    in_workers(monkeypatch)
    result = verify_both_ways(monkeypatch, from_id=4)
    assert (result.first_bad_id, result.problems[0]["code"]) == (4, "chain.missing_event")


@pytest.mark.postgres
def test_failed_workers_leave_the_walk_to_this_process(
    transactional_db, quiet, monkeypatch, caplog
):
    record(EVENTS)
    tamper("UPDATE audit_auditevent SET actor_repr = 'mallory' WHERE id = 5")
    in_workers(monkeypatch)
    monkeypatch.setattr(verification, "_WORKER", [sys.executable, "-c", "raise SystemExit(3)"])
    with caplog.at_level(logging.WARNING, logger="ledgerguard.audit"):
        result = verify_both_ways(monkeypatch)
    assert result.first_bad_id == 5
    assert "verifying in-process" in caplog.text


def test_inside_a_transaction_the_walk_stays_in_this_process(db, monkeypatch):
    """Workers could not see what the caller's transaction has not committed."""
    in_workers(monkeypatch)
    assert verification._worker_count(10**6) == 1
