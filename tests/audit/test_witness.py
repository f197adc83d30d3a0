"""The checkpoint witness: copies of signed checkpoints outside the database host, against a
real local HTTP receiver and a real local SMTP server."""

import hashlib
import hmac
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.module_loading import import_string

from alerts.models import Alert
from audit import checks, services, witness
from audit.models import Checkpoint, CheckpointPublication
from audit.services import audit_record
from integrity import services as integrity
from tests.audit.helpers import rewrite_chain, tamper
from tests.receivers import Receiver, free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def worker(monkeypatch):
    """async_task runs the task at once, as a worker would: only what is queued runs."""
    queued = []

    def run(func, *args, **kwargs):
        queued.append(func)
        return import_string(func)(*args)

    monkeypatch.setattr(witness, "async_task", run)
    return queued


@pytest.fixture
def receiver(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on 127.0.0.1
    r = Receiver(body=b'{"stored": true}')
    settings.AUDIT_CHECKPOINT_WITNESS_URL = r.url + "/witness/ledgerguard"
    settings.AUDIT_CHECKPOINT_WITNESS_SECRET = "w1tness-secret"
    yield r
    r.stop()


def checkpoint(capture) -> Checkpoint:
    """A new event, then a checkpoint whose transaction commits (its callbacks run)."""
    audit_record(action="auth.login", metadata={"n": Checkpoint.objects.count()})
    with capture(execute=True):
        made = services.checkpoint_create()
    assert made is not None
    return made


def run_check():
    run = integrity.checks_run(trigger="command", checks=["audit.checkpoints_witnessed"])
    result = run.results.get(check_name="audit.checkpoints_witnessed")
    return result.status, list(run.findings.order_by("id"))


def alert_firing() -> bool:
    return Alert.objects.filter(
        source="checks", key="audit.checkpoints_witnessed", state="firing"
    ).exists()


def test_without_a_witness_nothing_is_published(django_capture_on_commit_callbacks, worker):
    checkpoint(django_capture_on_commit_callbacks)
    assert not CheckpointPublication.objects.exists() and worker == []
    assert witness.publications_send_due() == {}
    assert run_check()[0] == "pass"


def test_a_new_checkpoint_reaches_the_webhook_witness_after_commit(
    receiver, django_capture_on_commit_callbacks, settings
):
    audit_record(action="auth.login")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        made = services.checkpoint_create()
        publication = CheckpointPublication.objects.get()
        assert publication.status == "pending" and publication.channel == "webhook"
    assert receiver.requests == []  # nothing leaves before the checkpoint is committed
    for callback in callbacks:
        callback()
    (request,) = receiver.requests
    assert request["path"] == "/witness/ledgerguard"
    assert request["body"] == Path(made.location).read_bytes()  # the file, byte for byte
    headers = request["headers"]
    assert headers["X-Ledgerguard-Event"] == "audit.checkpoint"
    signed = headers["X-Ledgerguard-Timestamp"].encode() + b"." + request["body"]
    expected = hmac.new(b"w1tness-secret", signed, hashlib.sha256).hexdigest()
    assert headers["X-Ledgerguard-Signature"] == f"v1={expected}"
    publication.refresh_from_db()
    assert (publication.status, publication.attempts) == ("sent", 1)
    assert publication.response == '200 {"stored": true}' and publication.sent_at is not None
    assert publication.destination == receiver.url  # the host, never the path
    settings.AUDIT_CHECKPOINT_WITNESS_MAX_AGE_HOURS = 0
    assert run_check()[0] == "pass"


def test_a_new_checkpoint_reaches_the_email_witness(
    smtp, settings, django_capture_on_commit_callbacks
):
    settings.AUDIT_CHECKPOINT_WITNESS_EMAIL = ["vault@example.org", "auditor@example.net"]
    made = checkpoint(django_capture_on_commit_callbacks)
    ((recipients, message),) = smtp.messages
    assert sorted(recipients) == ["auditor@example.net", "vault@example.org"]
    assert message["Subject"] == f"[Ledgerguard] Audit checkpoint #{made.sequence}"
    (attachment,) = [part for part in message.walk() if part.get_filename()]
    assert attachment.get_filename() == Path(made.location).name
    assert attachment.get_payload(decode=True) == Path(made.location).read_bytes()
    assert CheckpointPublication.objects.get().status == "sent"


def test_a_witness_that_is_down_is_retried_then_the_check_fails_and_alerts(
    settings, django_capture_on_commit_callbacks
):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True
    port = free_port()  # nobody listens there yet
    settings.AUDIT_CHECKPOINT_WITNESS_URL = f"http://127.0.0.1:{port}/witness"
    made = checkpoint(django_capture_on_commit_callbacks)
    publication = CheckpointPublication.objects.get()
    assert (publication.status, publication.attempts) == ("pending", 1)
    assert "could not reach http://127.0.0.1" in publication.last_error
    first_retry = publication.next_attempt_at
    assert first_retry > timezone.now()
    assert witness.publications_send_due() == {}  # not due yet
    assert run_check()[0] == "pass"  # younger than AUDIT_CHECKPOINT_WITNESS_MAX_AGE_HOURS

    CheckpointPublication.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert witness.publications_send_due() == {"retry": 1}
    publication.refresh_from_db()
    assert (publication.status, publication.attempts) == ("pending", 2)
    assert publication.next_attempt_at - timezone.now() > timedelta(seconds=100)  # backoff doubles

    settings.AUDIT_CHECKPOINT_WITNESS_MAX_AGE_HOURS = 0  # the checkpoint is now "too old"
    status, (finding,) = run_check()
    assert status == "fail" and finding.key == "webhook" and finding.object_id == str(made.pk)
    assert "could not reach" in finding.message and "newest witnessed: none" in finding.message
    assert alert_firing()

    # The witness comes back (on the same port): the next due retry delivers, the check passes.
    back = Receiver(port=port)
    try:
        CheckpointPublication.objects.update(next_attempt_at=timezone.now())
        assert witness.publications_send_due() == {"sent": 1}
    finally:
        back.stop()
    assert len(back.requests) == 1
    assert run_check()[0] == "pass" and not alert_firing()


def test_a_witness_the_outbound_rules_refuse_fails_for_good(
    settings, django_capture_on_commit_callbacks
):
    settings.AUDIT_CHECKPOINT_WITNESS_URL = "http://169.254.169.254/latest/"
    made = checkpoint(django_capture_on_commit_callbacks)
    publication = CheckpointPublication.objects.get()
    assert (publication.status, publication.attempts) == ("failed", 1)
    assert "outbound.address_not_allowed" in publication.last_error
    settings.AUDIT_CHECKPOINT_WITNESS_MAX_AGE_HOURS = 0
    status, (finding,) = run_check()
    assert status == "fail" and "address_not_allowed" in finding.message
    assert witness.publications_retry(checkpoint=made) == 1  # after fixing the setting
    assert CheckpointPublication.objects.get().status == "pending"


def test_audit_checkpoint_publish_sends_a_failed_copy_again(
    settings, django_capture_on_commit_callbacks, capsys
):
    settings.AUDIT_CHECKPOINT_WITNESS_URL = "http://127.0.0.1:9/witness"
    made = checkpoint(django_capture_on_commit_callbacks)
    assert CheckpointPublication.objects.get().status == "failed"  # refused: a private address
    with pytest.raises(CommandError, match="Not every copy"):
        call_command("audit_checkpoint", "--publish")
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True  # the fix: the witness is a local service
    fixed = Receiver()
    settings.AUDIT_CHECKPOINT_WITNESS_URL = fixed.url
    try:
        call_command("audit_checkpoint", "--publish")
    finally:
        fixed.stop()
    assert "Witness: 1 sent" in capsys.readouterr().out
    assert fixed.requests[0]["body"] == Path(made.location).read_bytes()
    settings.AUDIT_CHECKPOINT_WITNESS_URL = ""
    with pytest.raises(CommandError, match="No checkpoint witness"):
        call_command("audit_checkpoint", "--publish")


def test_the_schedule_publishes_the_newest_checkpoint_for_a_witness_set_up_later(
    receiver, settings, django_capture_on_commit_callbacks
):
    url = settings.AUDIT_CHECKPOINT_WITNESS_URL
    settings.AUDIT_CHECKPOINT_WITNESS_URL = ""
    checkpoint(django_capture_on_commit_callbacks)
    newest = checkpoint(django_capture_on_commit_callbacks)
    assert not CheckpointPublication.objects.exists()
    settings.AUDIT_CHECKPOINT_WITNESS_URL = url
    settings.AUDIT_CHECKPOINT_WITNESS_MAX_AGE_HOURS = 0
    assert run_check()[0] == "fail"  # nothing witnessed yet
    with django_capture_on_commit_callbacks(execute=True):
        assert witness.publications_send_due() == {"sent": 1}
    assert [p.checkpoint_id for p in CheckpointPublication.objects.all()] == [newest.pk]
    assert receiver.requests[0]["body"] == Path(newest.location).read_bytes()
    assert run_check()[0] == "pass"  # the newest copy vouches for the older checkpoint
    assert witness.publications_send_due() == {}  # nothing twice


def test_a_publication_left_by_a_dead_worker_is_taken_back(
    receiver, django_capture_on_commit_callbacks, worker, monkeypatch
):
    monkeypatch.setattr(witness, "async_task", lambda *a, **k: None)  # the task is lost
    checkpoint(django_capture_on_commit_callbacks)
    CheckpointPublication.objects.update(
        status="sending", claimed_at=timezone.now() - timedelta(hours=1)
    )
    assert witness.publications_send_due() == {"sent": 1}
    assert len(receiver.requests) == 1


def test_verify_audit_chain_checks_the_witness_copies(
    receiver, django_capture_on_commit_callbacks, tmp_path, capsys
):
    """The witness's copies expose a rewrite even when the database's checkpoints and the
    backup location were rewritten with it."""
    for _ in range(3):
        audit_record(action="auth.login")
    made = checkpoint(django_capture_on_commit_callbacks)
    copies = tmp_path / "witness" / "2026-12"
    copies.mkdir(parents=True)
    (copies / "received-1.json").write_bytes(receiver.requests[0]["body"])
    call_command("verify_audit_chain", "--checkpoints", str(tmp_path / "witness"))
    assert "3 checkpoint copies (database, backup storage and" in capsys.readouterr().out

    rewrite_chain(change_id=2, actor_repr="nobody")
    CheckpointPublication.objects.all().delete()  # the attacker covers every trace here
    tamper("DELETE FROM audit_checkpoint", table="audit_checkpoint")
    shutil.rmtree(services.checkpoint_dir())
    call_command("verify_audit_chain")  # what is left on the database host looks fine
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit_chain", "--checkpoints", str(tmp_path / "witness"))
    assert caught.value.returncode == 1
    out = capsys.readouterr().out
    assert "checkpoint.hash_mismatch" in out and "checkpoint.not_in_database" in out
    assert f"#{made.sequence}" in out
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit_chain", "--checkpoints", str(tmp_path / "nowhere"))
    assert caught.value.returncode == 2


def test_check_deploy_warns_about_an_unsafe_witness(settings):
    settings.AUDIT_CHECKPOINT_WITNESS_URL = ""
    assert checks.witness_configured(None) == []
    settings.AUDIT_CHECKPOINT_WITNESS_URL = "http://witness.example.org/in"
    settings.AUDIT_CHECKPOINT_WITNESS_SECRET = ""
    assert [w.id for w in checks.witness_configured(None)] == ["audit.W003", "audit.W004"]
    settings.AUDIT_CHECKPOINT_WITNESS_URL = "https://witness.example.org/in"
    settings.AUDIT_CHECKPOINT_WITNESS_SECRET = "s3cret"
    assert checks.witness_configured(None) == []


def test_the_checkpoint_admin_shows_the_witness_copies(
    receiver, admin_user, client, django_capture_on_commit_callbacks
):
    made = checkpoint(django_capture_on_commit_callbacks)
    client.force_login(admin_user)
    listing = client.get("/admin/audit/checkpoint/")
    assert listing.status_code == 200 and b"Witnessed" in listing.content
    page = client.get(f"/admin/audit/checkpoint/{made.pk}/change/").content.decode()
    assert f"Webhook to {receiver.url}: Sent after 1 attempt(s)" in page
    assert "/witness/ledgerguard" not in page  # the URL's path stays out of the admin
