"""The checkpoint witness: a copy of every signed checkpoint outside the database host.

With AUDIT_CHECKPOINT_WITNESS_URL (a webhook) and/or AUDIT_CHECKPOINT_WITNESS_EMAIL set, the
transaction that signs a checkpoint also makes one CheckpointPublication per channel; after
the commit a django-q2 task (`audit.tasks.publish_checkpoint`) sends the checkpoint document,
the same bytes as its file in BACKUP_DIR. A failure is recorded on the publication and retried
with backoff by the schedule `audit.publish_checkpoints`, which also publishes the newest
checkpoint when it has no copy yet (a witness configured later, a lost task).

Failures are data, never an alert raised from here (alerts sit above audit): the integrity
check `audit.checkpoints_witnessed` (audit/checks.py) fails when the witness lags behind by
more than AUDIT_CHECKPOINT_WITNESS_MAX_AGE_HOURS, and its failure raises the alert.

Publications are not audit events: each would add an event to the chain, and the next hour
would sign, and publish, a checkpoint of nothing else.
"""

import functools
import logging
import smtplib
from collections.abc import Callable
from datetime import timedelta

from anymail.exceptions import AnymailError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_q.tasks import async_task

from audit.canonical import checkpoint_document, checkpoint_file_name, format_time
from audit.exceptions import PublishError
from audit.models import Checkpoint, CheckpointPublication
from config import outbound

logger = logging.getLogger("ledgerguard.audit.witness")

Channel = CheckpointPublication.Channel
Status = CheckpointPublication.Status
EVENT_HEADER = "X-Ledgerguard-Event"
# A publication claimed for sending this long ago belongs to a worker that died.
STUCK_AFTER = timedelta(minutes=15)
MAX_RETRY_DELAY = timedelta(hours=1)


def witness_channels() -> dict[str, str]:
    """The configured witness channels and where they go (a host or addresses, never a path)."""
    channels: dict[str, str] = {}
    if settings.AUDIT_CHECKPOINT_WITNESS_URL:
        channels[Channel.WEBHOOK] = outbound.describe(settings.AUDIT_CHECKPOINT_WITNESS_URL)
    if settings.AUDIT_CHECKPOINT_WITNESS_EMAIL:
        channels[Channel.EMAIL] = ", ".join(settings.AUDIT_CHECKPOINT_WITNESS_EMAIL)[:200]
    return channels


def publications_create(*, checkpoint: Checkpoint) -> list[int]:
    """One publication per configured channel, in the caller's transaction; each is sent by a
    worker once that transaction commits. Returns the new publications' ids."""
    created = []
    for channel, destination in witness_channels().items():
        publication, new = CheckpointPublication.objects.get_or_create(
            checkpoint=checkpoint, channel=channel, defaults={"destination": destination}
        )
        if new:
            created.append(publication.pk)
    for pk in created:
        transaction.on_commit(functools.partial(_queue, pk))
    return created


def _queue(publication_id: int) -> None:
    try:
        async_task(
            "audit.tasks.publish_checkpoint", publication_id, task_name="audit.publish_checkpoint"
        )
    except Exception:  # the schedule audit.publish_checkpoints sends it anyway
        logger.exception("Could not queue the witness copy of publication %s", publication_id)


def document_of(checkpoint: Checkpoint) -> bytes:
    return checkpoint_document(
        sequence=checkpoint.sequence,
        hash=checkpoint.hash,
        created_at=format_time(checkpoint.created_at),
        key_id=checkpoint.key_id,
        signature=checkpoint.signature,
    )


def _send_webhook(checkpoint: Checkpoint, document: bytes) -> str:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Ledgerguard-Audit/1",
        EVENT_HEADER: "audit.checkpoint",
    }
    secret = settings.AUDIT_CHECKPOINT_WITNESS_SECRET
    if secret:
        headers.update(outbound.signature_headers(secret, document))
    try:
        answer = outbound.request(
            settings.AUDIT_CHECKPOINT_WITNESS_URL,
            body=document,
            headers=headers,
            timeout=settings.ALERT_HTTP_TIMEOUT,
        )
    except outbound.OutboundError as exc:
        raise PublishError(str(exc), permanent=exc.permanent) from exc
    return str(answer)


def _send_email(checkpoint: Checkpoint, document: bytes) -> str:
    name = checkpoint_file_name(sequence=checkpoint.sequence, hash=checkpoint.hash)
    body = (
        f"Ledgerguard signed its audit chain at event #{checkpoint.sequence}.\n\n"
        f"Keep the attached {name} where the database's administrators cannot change it: "
        "`manage.py verify_audit_chain --checkpoints DIR` checks the chain against a folder of "
        "these files, and scripts/verify_audit_export.py --checkpoint checks an export "
        "(docs/audit.md).\n\n" + document.decode()
    )
    message = EmailMessage(
        subject=f"[Ledgerguard] Audit checkpoint #{checkpoint.sequence}",
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(settings.AUDIT_CHECKPOINT_WITNESS_EMAIL),
        headers={EVENT_HEADER: "audit.checkpoint"},
        attachments=[(name, document, "application/json")],
    )
    try:
        message.send(fail_silently=False)
    except (smtplib.SMTPRecipientsRefused, AnymailRecipientsRefused) as exc:
        raise PublishError(f"recipient refused: {exc}", permanent=True) from exc
    except (smtplib.SMTPException, OSError, AnymailError) as exc:
        raise PublishError(f"sending the email failed: {exc}") from exc
    return "accepted by the mail server"


SENDERS: dict[str, Callable[[Checkpoint, bytes], str]] = {
    Channel.WEBHOOK: _send_webhook,
    Channel.EMAIL: _send_email,
}


def publication_send(*, publication_id: int) -> str:
    """Send one publication; claimed with a conditional update, so a copy goes out at most once
    at a time. Returns "sent", "retry", "failed" or "skipped" (taken, or already done)."""
    now = timezone.now()
    claimed = CheckpointPublication.objects.filter(pk=publication_id, status=Status.PENDING).update(
        status=Status.SENDING, attempts=F("attempts") + 1, claimed_at=now, next_attempt_at=None
    )
    if not claimed:
        return "skipped"
    publication = CheckpointPublication.objects.select_related("checkpoint").get(pk=publication_id)
    try:
        if publication.channel not in witness_channels():
            raise PublishError(
                f"the {publication.channel} witness is no longer configured", permanent=True
            )
        response = SENDERS[publication.channel](
            publication.checkpoint, document_of(publication.checkpoint)
        )
    except PublishError as exc:
        return _failed(publication, exc)
    CheckpointPublication.objects.filter(pk=publication.pk).update(
        status=Status.SENT, sent_at=timezone.now(), response=response[:250], last_error=""
    )
    return "sent"


def _failed(publication: CheckpointPublication, exc: PublishError) -> str:
    attempts = publication.attempts
    exhausted = exc.permanent or attempts >= settings.AUDIT_CHECKPOINT_WITNESS_MAX_ATTEMPTS
    delay = min(
        timedelta(seconds=settings.AUDIT_CHECKPOINT_WITNESS_RETRY_SECONDS * 2 ** (attempts - 1)),
        MAX_RETRY_DELAY,
    )
    CheckpointPublication.objects.filter(pk=publication.pk).update(
        status=Status.FAILED if exhausted else Status.PENDING,
        last_error=str(exc)[:2000],
        next_attempt_at=None if exhausted else timezone.now() + delay,
    )
    logger.warning(
        "Witness copy of checkpoint #%s (%s) failed, attempt %s%s: %s",
        publication.checkpoint.sequence,
        publication.channel,
        attempts,
        " (giving up)" if exhausted else f", again in {delay}",
        exc,
    )
    return "failed" if exhausted else "retry"


def publications_send_due(*, limit: int = 50) -> dict[str, int]:
    """The schedule: publish the newest checkpoint if it has no copy yet, take back sends that
    a dead worker left, and send what is due."""
    channels = witness_channels()
    if not channels:
        return {}
    now = timezone.now()
    newest = Checkpoint.objects.order_by("-sequence").first()
    if newest is not None:
        with transaction.atomic():
            publications_create(checkpoint=newest)
    CheckpointPublication.objects.filter(
        status=Status.SENDING, claimed_at__lt=now - STUCK_AFTER
    ).update(status=Status.PENDING, next_attempt_at=now)
    due = list(
        CheckpointPublication.objects.filter(status=Status.PENDING, channel__in=list(channels))
        .exclude(next_attempt_at__gt=now)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    outcomes: dict[str, int] = {}
    for pk in due:
        outcome = publication_send(publication_id=pk)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def publications_retry(*, checkpoint: Checkpoint) -> int:
    """Send the checkpoint's failed copies again (after the witness was fixed)."""
    return CheckpointPublication.objects.filter(checkpoint=checkpoint, status=Status.FAILED).update(
        status=Status.PENDING, next_attempt_at=None, attempts=0
    )
