"""Verifying the audit chain: tampering past the triggers is found at the event where it
happened, signed checkpoints catch a consistent rewrite, and the command, the schedule and the
alerts report it."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from alerts.models import OPEN_STATES, Alert
from audit import services, tasks
from audit.models import AuditEvent, Verification
from tests.audit.helpers import chain, record, redate, rewrite_chain, tamper, verify

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
    redate(3)
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
