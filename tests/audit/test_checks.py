"""audit.checkpoints_recent: signed checkpoints keep up with the trail, in the database and in
BACKUP_DIR, so that deleting them (and signing a rewritten chain afterwards) does not go
unnoticed even when the verification of the chain itself passes."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from alerts.models import Alert
from audit import services
from audit.checks import checkpoint_max_age, longest_gap
from audit.models import Checkpoint
from integrity.services import checks_run
from tests.audit.factories import CheckpointFactory
from tests.audit.helpers import rewrite_chain, tamper

pytestmark = pytest.mark.django_db
CHECK = "audit.checkpoints_recent"


@pytest.fixture
def clock(monkeypatch):
    """Django's clock, moved forward with `clock(hours=3)`; everything that calls
    timezone.now() (events, checkpoints, check runs) sees the same time."""
    real_now = timezone.now
    offset = [timedelta(0)]
    monkeypatch.setattr(timezone, "now", lambda: real_now() + offset[0])

    def advance(**delta):
        offset[0] += timedelta(**delta)

    return advance


def record(n: int) -> None:
    for i in range(n):
        with transaction.atomic():
            services.audit_record(action="test.event", metadata={"i": i})


def check() -> tuple[str, dict[str, object]]:
    """The check's status and its findings by key."""
    run = checks_run(trigger="command", checks=[CHECK])
    result = run.results.get(check_name=CHECK)
    return result.status, {f.key: f for f in run.findings.filter(check_name=CHECK)}


def hourly(clock, hours: int) -> None:
    """Time passes with the checkpoint schedule running every hour."""
    for _ in range(hours):
        clock(hours=1)
        services.checkpoint_create()


def test_a_fresh_install_passes_before_its_first_checkpoint(clock):
    record(3)
    clock(minutes=50)
    assert check() == ("pass", {})


def test_without_a_signing_key_there_is_nothing_to_check(clock, settings):
    settings.AUDIT_SIGNING_KEY = ""
    record(3)
    clock(hours=30)
    assert check() == ("pass", {})


def test_a_missed_checkpoint_run_is_caught(clock):
    record(2)
    first = services.checkpoint_create()
    record(3)  # #3 to #5, never signed: the worker stopped
    clock(hours=2, minutes=30)
    status, findings = check()
    assert status == "fail" and set(findings) == {"uncovered"}
    uncovered = findings["uncovered"]
    assert uncovered.count == 3 and uncovered.sample == [3]
    assert uncovered.details["newest_checkpoint"] == first.sequence == 2
    assert Alert.objects.filter(source="checks", key=CHECK, state="firing").exists()

    # The worker is back: its checkpoint covers them, but it signed them late, so that stays
    # visible for two days (a rewritten chain signed after its checkpoints were deleted
    # looks the same), and then clears.
    services.checkpoint_create()
    status, findings = check()
    assert status == "fail" and set(findings) == {"late"}
    assert "covers event #3 written 2.5 h earlier" in findings["late"].message
    hourly(clock, 49)
    assert check() == ("pass", {})
    assert not Alert.objects.filter(source="checks", key=CHECK, state="firing").exists()


def test_the_review_attack_passes_verification_but_not_this_check(clock, backup_dir):
    """The attack from the security review, as the tables' owner or a superuser could do it:
    triggers off, events rewritten with every hash recomputed, checkpoints deleted in the
    database and in BACKUP_DIR. The chain verifies; this check does not pass."""
    record(5)
    hourly(clock, 3)  # signed at the next run, then quiet hours
    assert check()[0] == "pass"

    rewrite_chain(change_id=2, actor_repr="mallory (#99)")
    tamper("DELETE FROM audit_checkpoint", table="audit_checkpoint")
    for path in (backup_dir / "audit-checkpoints").glob("*.json"):
        path.unlink()
    assert services.chain_verify(triggered_by="test").status == "ok"

    status, findings = check()
    assert status == "fail" and set(findings) == {"uncovered"}
    assert findings["uncovered"].sample == [1]

    # The next scheduled run signs the rewritten chain; the checkpoint is the first to cover
    # events written hours before it, which is what gives the laundering away.
    clock(minutes=20)
    services.checkpoint_create()
    assert services.chain_verify(triggered_by="test").status == "ok"
    status, findings = check()
    assert status == "fail" and set(findings) == {"late"}
    assert "covers event #1" in findings["late"].message


def test_checkpoints_deleted_in_one_place_are_caught(clock, backup_dir):
    record(2)
    services.checkpoint_create()
    clock(hours=1)
    record(2)
    services.checkpoint_create()
    assert check() == ("pass", {})

    files = sorted((backup_dir / "audit-checkpoints").glob("*.json"))
    files[0].unlink()
    status, findings = check()
    assert status == "fail" and set(findings) == {"not_in_storage"}
    assert findings["not_in_storage"].sample == [2]

    tamper("DELETE FROM audit_checkpoint WHERE sequence = 4", table="audit_checkpoint")
    clock(minutes=15)  # past the grace for a file whose row has not committed yet
    status, findings = check()
    assert set(findings) == {"not_in_storage", "not_in_database"}
    assert findings["not_in_database"].sample == [4]


def test_forged_and_unreadable_checkpoints_are_caught_and_cover_nothing(clock, backup_dir):
    record(3)
    clock(hours=3)
    stamp = "2026-01-01T00:00:00.000000Z"
    CheckpointFactory(
        sequence=3, hash="0" * 64, created_at=timezone.now(), key_id="f" * 16, signature="0" * 64
    )
    directory = backup_dir / "audit-checkpoints"
    directory.mkdir(parents=True)
    forged = {
        "sequence": 3,
        "hash": "0" * 64,
        "created_at": stamp,
        "key_id": services.key_id("guessed"),
        "signature": "0" * 64,
    }
    (directory / "checkpoint-000000000003-000000000000.json").write_text(json.dumps(forged))
    (directory / "checkpoint-000000000009-broken.json").write_text("{not json")
    status, findings = check()
    assert status == "fail"
    assert findings["bad_signature"].count == 2
    forged_file = "checkpoint-000000000003-000000000000.json"
    assert findings["bad_signature"].sample == ["database #3", forged_file]
    assert findings["unreadable"].sample == ["checkpoint-000000000009-broken.json"]
    # A forged checkpoint is no cover: the three events are still unsigned.
    assert findings["uncovered"].count == 3


def test_a_file_written_just_before_its_row_commits_is_not_reported(clock, backup_dir):
    """checkpoint_create writes the file before its transaction commits; a check reading in
    between sees a file without its row, which is only worth reporting once it stays so."""
    record(1)
    with transaction.atomic():
        services.checkpoint_create()
        transaction.set_rollback(True)  # as if it had not committed yet
    assert len(list((backup_dir / "audit-checkpoints").glob("*.json"))) == 1
    assert not Checkpoint.objects.exists()
    assert check() == ("pass", {})
    clock(minutes=11)
    assert set(check()[1]) == {"not_in_database"}


def test_the_allowed_age_follows_the_checkpoint_schedule(settings):
    assert longest_gap("5 * * * *") == timedelta(hours=1)
    assert longest_gap("*/15 * * * *") == timedelta(minutes=15)
    assert longest_gap("0 2 * * 1-5") == timedelta(days=3)  # Friday night to Monday night
    assert checkpoint_max_age() == timedelta(hours=2)  # the default, hourly at :05
    settings.AUDIT_CHECKPOINT_CRON = "30 2 * * *"
    assert checkpoint_max_age() == timedelta(hours=25)
    settings.AUDIT_CHECKPOINT_MAX_AGE_HOURS = 6
    assert checkpoint_max_age() == timedelta(hours=6)


def test_the_check_runs_hourly_with_the_audit_tag(db):
    call_command("sync_schedules", verbosity=0)
    schedule = Schedule.objects.get(name="checks.audit_hourly")
    assert schedule.cron == "35 * * * *"
    assert schedule.kwargs == repr({"tags": ["audit"], "schedule": "checks.audit_hourly"})
