"""The audit trail's checks: system checks of its configuration (`manage.py check --deploy`) and
registered integrity checks (config/registry.py) of its liveness."""

import datetime as dt
import functools
import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from croniter import croniter
from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.models import Count, Max, Min
from django.utils import timezone

from audit.canonical import format_time
from audit.db_guards import APP_ROLE_PRIVILEGES
from audit.models import AuditEvent, Checkpoint, Verification, VerificationStatus
from audit.selectors import checkpoint_witness_lag
from audit.services import checkpoint_signature_problem, stored_checkpoints
from audit.witness import witness_channels
from config.db.roles import grants_for
from config.registry import CheckContext, Finding
from config.registry import register as register_check

# System checks ------------------------------------------------------------------------------


@register("audit", deploy=True)
def signing_key_set(app_configs, **kwargs):
    if settings.AUDIT_SIGNING_KEY:
        return []
    return [
        Warning(
            "AUDIT_SIGNING_KEY is not set, so audit checkpoints cannot be signed and a rewrite "
            "of the whole audit table would go unnoticed.",
            hint="Set AUDIT_SIGNING_KEY to a long random value kept outside the database "
            "(docs/audit.md).",
            id="audit.W001",
        )
    ]


@register("audit", deploy=True)
def witness_configured(app_configs, **kwargs):
    url = settings.AUDIT_CHECKPOINT_WITNESS_URL
    problems = []
    if url and not url.lower().startswith("https://"):
        problems.append(
            Warning(
                "AUDIT_CHECKPOINT_WITNESS_URL is not an https URL: checkpoint copies travel "
                "unencrypted and unauthenticated to the witness.",
                hint="Use an https endpoint (docs/audit.md, The checkpoint witness).",
                id="audit.W003",
            )
        )
    if url and not settings.AUDIT_CHECKPOINT_WITNESS_SECRET:
        problems.append(
            Warning(
                "AUDIT_CHECKPOINT_WITNESS_SECRET is not set, so checkpoint copies go to the "
                "witness unsigned: it cannot tell them from copies someone else posts.",
                hint="Set AUDIT_CHECKPOINT_WITNESS_SECRET and give it to the witness.",
                id="audit.W004",
            )
        )
    return problems


@register("audit", Tags.database, deploy=True)
def app_role_cannot_disable_guards(app_configs, databases=None, **kwargs):
    """With `--deploy --database default`: the role the application connects as cannot switch
    off the audit trail's triggers (it does not own the tables and is no superuser)."""
    if not databases or DEFAULT_DB_ALIAS not in databases:
        return []
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        excess = grants_for(connection).excess(connection, limited=APP_ROLE_PRIVILEGES)
    except DatabaseError:
        return []  # no database to ask; `check --deploy` runs in CI without one
    if not excess:
        return []
    return [
        Warning(
            f"The application's database role {'; '.join(excess)}: with its password the audit "
            "triggers can be switched off (ALTER TABLE ... DISABLE TRIGGER) and the trail "
            "rewritten; only the hash chain and the signed checkpoints would show it.",
            hint="Run the application as a role that does not own the tables: set "
            "DATABASE_MIGRATE_URL to the owner and DATABASE_URL to the application's role, then "
            "run manage.py migrate (docs/audit.md, 'A role that does not own the tables').",
            id="audit.W002",
        )
    ]


# Registered integrity checks ----------------------------------------------------------------

# A checkpoint signed late (see checkpoints_recent) is reported for this long after it was
# signed: long enough for the daily run to see it, short enough that a worker outage clears.
LATE_LOOKBACK = timedelta(hours=48)
# A checkpoint file is written just before its database row commits; younger files may lack it.
FILE_GRACE = timedelta(minutes=10)


@register_check("audit.verification_recent", tag="audit", severity="error", explainable=False)
def verification_recent(ctx: CheckContext) -> Iterator[Finding]:
    """A full verification of the audit chain passed within AUDIT_VERIFY_MAX_AGE_HOURS.

    The daily job (`audit.verify_chain`) verifies the whole chain; if it stopped running or
    its last run found the chain broken, this says so."""
    full = Verification.objects.filter(from_id__isnull=True, to_id__isnull=True)
    last = full.order_by("-started_at", "-pk").first()
    limit = timedelta(hours=settings.AUDIT_VERIFY_MAX_AGE_HOURS)
    if last is None:
        # Only once the trail is older than the limit: a new install has had no night yet.
        first = AuditEvent.objects.order_by("id").values_list("occurred_at", flat=True).first()
        if first is not None and timezone.now() - first > limit:
            yield Finding(message="the audit chain has never been fully verified", key="never")
        return
    if last.status != VerificationStatus.OK:
        yield Finding(
            message=f"the last full verification ({last.started_at:%Y-%m-%d %H:%M}) found "
            f"{last.status}, first bad event {last.first_bad_id}",
            object_type=Verification._meta.label_lower,
            object_id=str(last.pk),
            key="failed",
        )
    passed = full.filter(status=VerificationStatus.OK).order_by("-started_at").first()
    if passed is None or timezone.now() - passed.started_at > limit:
        when = f"{passed.started_at:%Y-%m-%d %H:%M}" if passed else "never"
        yield Finding(
            message=f"no full verification passed in the last "
            f"{settings.AUDIT_VERIFY_MAX_AGE_HOURS} h (last pass: {when})",
            key="stale",
        )


@functools.lru_cache(maxsize=8)
def longest_gap(cron: str) -> timedelta:
    """The longest time between two runs of `cron`, over two months from a fixed date."""
    runs = croniter(cron, dt.datetime(2001, 1, 1, tzinfo=dt.UTC))
    previous = runs.get_next(dt.datetime)
    end, longest = previous + timedelta(days=62), timedelta(0)
    for _ in range(5000):
        following = runs.get_next(dt.datetime)
        longest = max(longest, following - previous)
        if following > end:
            break
        previous = following
    return longest


def checkpoint_max_age() -> timedelta:
    """How old an event may get before a signed checkpoint must cover it:
    AUDIT_CHECKPOINT_MAX_AGE_HOURS, or the schedule's longest gap rounded up to hours plus one."""
    if settings.AUDIT_CHECKPOINT_MAX_AGE_HOURS is not None:
        return timedelta(hours=settings.AUDIT_CHECKPOINT_MAX_AGE_HOURS)
    gap = longest_gap(settings.AUDIT_CHECKPOINT_CRON)
    return timedelta(hours=math.ceil(gap / timedelta(hours=1)) + 1)


def _hours(delta: timedelta) -> str:
    return f"{delta / timedelta(hours=1):.1f} h"


def _utc(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


def _parse_time(value: object) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


# A checkpoint as compared between the database and storage: (sequence, hash, created_at,
# key id, signature), all as text but the sequence.
Signed = tuple[int, str, str, str, str]


def _signature_ok(c: Signed) -> bool:
    seq, h, at, kid, sig = c
    problem = checkpoint_signature_problem(
        sequence=seq, hash=h, created_at=at, kid=kid, signature=sig
    )
    return problem is None


def _copies_findings(
    in_db: list[Signed],
    signed_ok: list[bool],
    files: list[dict[str, Any]],
    unreadable: list[str],
    *,
    now: dt.datetime,
    size: int,
) -> Iterator[Finding]:
    """Bad signatures, unreadable files, and checkpoints kept in only one of the two places."""
    in_storage: list[Signed] = [
        (f["sequence"], *(str(f.get(k)) for k in ("hash", "created_at", "key_id", "signature")))
        for f in files
    ]
    bad = [f"database #{c[0]}" for c, ok in zip(in_db, signed_ok, strict=True) if not ok]
    bad += [
        Path(f["file"]).name for f, c in zip(files, in_storage, strict=True) if not _signature_ok(c)
    ]
    if bad:
        yield Finding(
            message=f"{len(bad)} checkpoint(s) whose signature does not verify with "
            "AUDIT_SIGNING_KEY or AUDIT_SIGNING_OLD_KEYS: forged, edited, or signed with a key "
            "that was rotated out",
            count=len(bad),
            key="bad_signature",
            sample=bad[:size],
        )
    if unreadable:
        yield Finding(
            message=f"{len(unreadable)} checkpoint file(s) in BACKUP_DIR cannot be read",
            count=len(unreadable),
            key="unreadable",
            sample=[Path(p).name for p in unreadable[:size]],
        )
    stored, recorded = set(in_storage), set(in_db)
    not_stored = [c[0] for c in in_db if c not in stored]
    if not_stored:
        yield Finding(
            message=f"{len(not_stored)} checkpoint(s) in the database have no identical file "
            f"in {settings.BACKUP_DIR}/audit-checkpoints: the files were deleted, altered or "
            "never written there",
            count=len(not_stored),
            key="not_in_storage",
            sample=not_stored[:size],
        )
    unrecorded = []
    for c in in_storage:
        if c not in recorded:
            at = _parse_time(c[2])
            if at is None or now - at > FILE_GRACE:
                unrecorded.append(c[0])
    if unrecorded:
        yield Finding(
            message=f"{len(unrecorded)} checkpoint file(s) have no identical checkpoint in the "
            "database: checkpoints were deleted or altered there",
            count=len(unrecorded),
            key="not_in_database",
            sample=unrecorded[:size],
        )


def _uncovered_finding(newest: int, *, now: dt.datetime, limit: timedelta) -> Iterator[Finding]:
    """Events older than `limit` after the newest validly signed checkpoint (#`newest`)."""
    old = AuditEvent.objects.filter(id__gt=newest, occurred_at__lt=now - limit).aggregate(
        n=Count("id"), first=Min("id"), last=Max("id"), since=Min("occurred_at")
    )
    if old["n"]:
        after = f"after the newest checkpoint (#{newest})" if newest else "and no checkpoint"
        yield Finding(
            message=f"{old['n']} audit event(s) older than {_hours(limit)} have no signed "
            f"checkpoint {after}: #{old['first']} to #{old['last']}, the oldest written "
            f"{_utc(old['since'])}. The checkpoint job is not running, or checkpoints were "
            "deleted",
            count=old["n"],
            key="uncovered",
            sample=[old["first"]],
            details={"newest_checkpoint": newest, "max_age_hours": limit / timedelta(hours=1)},
        )


def _late_finding(
    valid: list[tuple[int, dt.datetime]], *, now: dt.datetime, limit: timedelta, size: int
) -> Iterator[Finding]:
    """Checkpoints signed in the last LATE_LOOKBACK that were the first to cover events
    written more than `limit` before them (`valid`: (sequence, signed at), in order)."""
    # The first event each recent checkpoint newly covered, and when it was written.
    firsts = {}
    for i, (sequence, signed) in enumerate(valid):
        start = valid[i - 1][0] + 1 if i else 1
        if now - signed <= LATE_LOOKBACK and start <= sequence:
            firsts[start] = (sequence, signed)
    written = dict(AuditEvent.objects.filter(id__in=list(firsts)).values_list("id", "occurred_at"))
    late = [
        (start, sequence, signed, written[start])
        for start, (sequence, signed) in sorted(firsts.items())
        if start in written and signed - written[start] > limit
    ]
    if late:
        start, sequence, signed, at = late[0]
        yield Finding(
            message=f"{len(late)} checkpoint(s) signed in the last {_hours(LATE_LOOKBACK)} were "
            f"the first to cover events older than {_hours(limit)}: the checkpoint at "
            f"#{sequence}, signed {_utc(signed)}, covers event #{start} written "
            f"{_hours(signed - at)} earlier. The checkpoint job had stopped, or the checkpoints "
            "before it were deleted and a rewritten chain was signed",
            count=len(late),
            key="late",
            sample=[s for _, s, _, _ in late[:size]],
        )


@register_check("audit.checkpoints_recent", tag="audit", severity="critical", explainable=False)
def checkpoints_recent(ctx: CheckContext) -> Iterator[Finding]:
    """Signed checkpoints keep up with the audit trail, and the copies in the database and in
    BACKUP_DIR agree and carry valid signatures (only while AUDIT_SIGNING_KEY is set).

    Fails when events older than the allowed age (AUDIT_CHECKPOINT_MAX_AGE_HOURS, by default
    the checkpoint schedule's interval plus an hour) have no checkpoint after them, when a
    checkpoint signed in the last 48 hours was the first to cover events written longer ago
    than that (the job had stopped, or the checkpoints before it were deleted and the next run
    signed a rewritten chain), when a checkpoint exists in only one of the two places, and
    when a signature does not verify."""
    if not settings.AUDIT_SIGNING_KEY:
        return  # audit/checkpoint_unsigned and audit.W001 say so
    now, limit, size = timezone.now(), checkpoint_max_age(), ctx.sample_size
    rows = list(
        Checkpoint.objects.order_by("sequence", "pk").values_list(
            "sequence", "hash", "created_at", "key_id", "signature"
        )
    )
    in_db: list[Signed] = [(seq, h, format_time(at), kid, sig) for seq, h, at, kid, sig in rows]
    signed_ok = [_signature_ok(c) for c in in_db]
    files, unreadable = stored_checkpoints()
    yield from _copies_findings(in_db, signed_ok, files, unreadable, now=now, size=size)
    valid = [(row[0], row[2]) for row, ok in zip(rows, signed_ok, strict=True) if ok]
    yield from _uncovered_finding(valid[-1][0] if valid else 0, now=now, limit=limit)
    yield from _late_finding(valid, now=now, limit=limit, size=size)


@register_check("audit.checkpoints_witnessed", tag="audit", severity="error", explainable=False)
def checkpoints_witnessed(ctx: CheckContext) -> Iterator[Finding]:
    """With a checkpoint witness configured, the witness holds a copy of every signed
    checkpoint older than AUDIT_CHECKPOINT_WITNESS_MAX_AGE_HOURS, or of a newer one.

    The copies are sent by audit/witness.py and retried there; this is where a witness that
    stopped taking them (down, refusing, misconfigured) becomes an alert."""
    max_age = timedelta(hours=settings.AUDIT_CHECKPOINT_WITNESS_MAX_AGE_HOURS)
    for lag in checkpoint_witness_lag(channels=witness_channels(), max_age=max_age):
        checkpoint = lag["checkpoint"]
        newest = f"#{lag['newest_witnessed']}" if lag["newest_witnessed"] else "none"
        error = f"; last error: {lag['last_error']}" if lag["last_error"] else ""
        yield Finding(
            message=f"the {lag['channel']} witness ({lag['destination']}) has no copy of "
            f"checkpoint #{checkpoint.sequence} made {checkpoint.created_at:%Y-%m-%d %H:%M} "
            f"UTC or of any later one (newest witnessed: {newest}){error}",
            count=lag["count"],
            object_type=checkpoint._meta.label_lower,
            object_id=str(checkpoint.pk),
            key=lag["channel"],
            details={
                "destination": lag["destination"],
                "last_error": lag["last_error"],
                "newest_witnessed": lag["newest_witnessed"],
            },
        )
