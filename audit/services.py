"""Audit services: record events, sign checkpoints, verify the chain.

`audit_record` is what every other service calls, inside its own transaction; the event joins
the hash chain when that transaction commits (audit/pending.py) and vanishes if it rolls back.
Exports live in audit/export.py.
"""

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.utils import timezone
from django_q.tasks import async_task

from audit import signals, witness
from audit.canonical import (
    GENESIS_HASH,
    HASHED_FIELDS,
    SCHEMA_VERSION,
    checkpoint_document,
    checkpoint_file_name,
    content_of,
    event_hash,
    format_time,
    normalize,
)
from audit.exceptions import InvalidRange, SigningKeyMissing
from audit.models import (
    AuditEvent,
    ChainHead,
    Checkpoint,
    RepeatCounter,
    Verification,
    VerificationStatus,
)
from audit.selectors import audit_verify_range_size
from config import context

logger = logging.getLogger("ledgerguard.audit")

# Values of these fields never enter the trail; that they changed does. Matched as words of
# the field name (`token_digest`, `signing_key`), so `key_pattern` or an alert's `key` stay.
# Not monitoring.sanitize's substring list: that one would hide `discarded_at` ("card").
SENSITIVE = re.compile(
    r"(^|_)(password|passwd|secret|token|digest|signature|api_key|private_key|signing_key)($|_)"
)
REDACTED = "[redacted]"
CHUNK = 5000


# Recording ------------------------------------------------------------------


def actor_repr(user: Any) -> str:
    if user is None:
        return "system"
    return f"{user.get_username()} (#{user.pk})"[:200]


def _redact(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        field: [REDACTED, REDACTED] if SENSITIVE.search(field.lower()) else values
        for field, values in changes.items()
    }


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """Field values of `instance` as the trail stores them (foreign keys as ids)."""
    values = {}
    for name in fields:
        field = instance._meta.get_field(name)
        values[name] = field.value_from_object(instance) if field.concrete else None
    return normalize(values)


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields whose normalised values differ."""
    before, after = normalize(before), normalize(after)
    return {
        name: [before.get(name), after.get(name)]
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }


def audit_record(
    *,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: Any = "",
    object_repr: str = "",
    changes: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    actor: Any = None,
    using: str = "default",
) -> None:
    """Record one audit event in the current transaction (or in its own, outside one).

    The actor, IP, user agent and request id come from the request context when not given.
    """
    ctx = context.current()
    if actor is None and ctx is not None:
        actor = ctx.user
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
        object_repr = object_repr or str(obj)
    content = {
        "schema_version": SCHEMA_VERSION,
        "actor_id": actor.pk if actor is not None else None,
        "actor_repr": actor_repr(actor),
        "ip": (ctx.ip or None) and ctx.ip[:45] if ctx else None,
        "user_agent": normalize(ctx.user_agent[:500]) if ctx else "",
        "request_id": ctx.request_id[:64] if ctx else "",
        "action": action[:100],
        "object_type": object_type[:100],
        "object_id": normalize(str(object_id if object_id is not None else ""))[:64],
        "object_repr": normalize(str(object_repr))[:200],
        "changes": _redact(normalize(dict(changes or {}))),
        "metadata": normalize(dict(metadata or {})),
    }
    connection = transaction.get_connection(using)
    if connection.get_autocommit():
        with transaction.atomic(using=using):
            connection.audit_hold(content)
        return
    connection.audit_hold(content)
    if connection.only_test_blocks_open():
        connection.audit_flush()


# Repeats anyone can cause ------------------------------------------------------

REPEAT_BY_LIMIT = 20  # names kept per window; the rest count under "(others)"


def _window_start(now: dt.datetime) -> dt.datetime:
    seconds = settings.AUDIT_REPEAT_WINDOW_MINUTES * 60
    return dt.datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, tz=dt.UTC)


def audit_record_repeatable(
    *,
    action: str,
    reason: str,
    who: str = "",
    metadata: Mapping[str, Any] | None = None,
    actor: Any = None,
) -> bool:
    """Record an event that an outsider can cause at will (a bogus token, a refused login, a
    denied request), bounded. Per client address (an IPv6 client by its /64, which one
    subscriber holds whole) and `reason`, the first AUDIT_REPEAT_LIMIT in each
    AUDIT_REPEAT_WINDOW_MINUTES window are recorded in full, and across all addresses at most
    AUDIT_REPEAT_GLOBAL_LIMIT; later ones are only counted, by `who` (the username tried, or
    the user) or, past the overall limit, by address, and written as one
    `audit.repeats_summarized` event per counter when the window has closed. True when this
    one was recorded in full.

    Anyone could otherwise grow the append-only trail without limit, also by rotating
    addresses. Runs in its own transaction when called outside one.
    """
    ctx = context.current()
    address = _address_key((ctx.ip or "") if ctx else "")
    now = timezone.now()
    window = _window_start(now)
    with transaction.atomic():
        # Lock order: the all-addresses counter, then the address's.
        overall = _locked_counter(reason=reason, ip=ALL_ADDRESSES, window_start=window)
        if overall.recorded >= settings.AUDIT_REPEAT_GLOBAL_LIMIT:
            _count_repeat(overall, label=address or "(unknown)", now=now)
            return False
        counter = _locked_counter(reason=reason, ip=address, window_start=window)
        if counter.recorded < settings.AUDIT_REPEAT_LIMIT:
            for row in (overall, counter):
                row.recorded += 1
                row.save(update_fields=["recorded"])
            audit_record(action=action, metadata=metadata, actor=actor)
            return True
        _count_repeat(counter, label=str(who)[:150] or "(unknown)", now=now)
        return False


ALL_ADDRESSES = "*"


def _address_key(ip: str) -> str:
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:45]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _locked_counter(*, reason: str, ip: str, window_start: dt.datetime) -> RepeatCounter:
    key = {"reason": reason[:100], "ip": ip, "window_start": window_start}
    counter = RepeatCounter.objects.select_for_update().filter(**key).first()
    if counter is not None:
        return counter
    try:
        with transaction.atomic():  # a concurrent first repeat may win the insert
            return RepeatCounter.objects.create(**key)
    except IntegrityError:
        return RepeatCounter.objects.select_for_update().get(**key)


def _count_repeat(counter: RepeatCounter, *, label: str, now: dt.datetime) -> None:
    if label not in counter.by and len(counter.by) >= REPEAT_BY_LIMIT:
        label = "(others)"
    counter.by[label] = counter.by.get(label, 0) + 1
    counter.suppressed += 1
    counter.first_suppressed_at = counter.first_suppressed_at or now
    counter.last_suppressed_at = now
    counter.save(update_fields=["by", "suppressed", "first_suppressed_at", "last_suppressed_at"])


def repeats_summarize(*, now: dt.datetime | None = None) -> int:
    """Write one `audit.repeats_summarized` event per closed counter that counted repeats, and
    drop the closed windows' counters, in batches until none is left. Safe to run twice;
    returns the events written."""
    now = now or timezone.now()
    closed_before = _window_start(now)
    written = 0
    while True:
        with transaction.atomic():
            counters = list(
                RepeatCounter.objects.select_for_update()
                .filter(window_start__lt=closed_before)
                .order_by("pk")[:1000]
            )
            for counter in counters:
                if counter.suppressed:
                    _summarize(counter)
                    written += 1
            RepeatCounter.objects.filter(pk__in=[c.pk for c in counters]).delete()
        if len(counters) < 1000:
            return written


def _summarize(counter: RepeatCounter) -> None:
    end = counter.window_start + dt.timedelta(minutes=settings.AUDIT_REPEAT_WINDOW_MINUTES)
    audit_record(
        action="audit.repeats_summarized",
        metadata={
            "reason": counter.reason,
            # "*": past AUDIT_REPEAT_GLOBAL_LIMIT, counted over every address ("by" address)
            "ip": counter.ip or None,
            "window_start": counter.window_start,
            "window_end": end,
            "recorded": counter.recorded,
            "count": counter.suppressed,
            "by": counter.by,
            "first_at": counter.first_suppressed_at,
            "last_at": counter.last_suppressed_at,
        },
    )


# Checkpoints ----------------------------------------------------------------


def key_id(key: str) -> str:
    return hashlib.sha256(b"ledgerguard-audit-key|" + key.encode()).hexdigest()[:16]


def _signing_keys() -> dict[str, str]:
    keys = [settings.AUDIT_SIGNING_KEY, *settings.AUDIT_SIGNING_OLD_KEYS]
    return {key_id(k): k for k in keys if k}


def checkpoint_message(*, sequence: int, hash: str, created_at: str) -> bytes:
    return f"ledgerguard-audit-checkpoint|v1|{sequence}|{hash}|{created_at}".encode()


def checkpoint_signature(*, key: str, sequence: int, hash: str, created_at: str) -> str:
    message = checkpoint_message(sequence=sequence, hash=hash, created_at=created_at)
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def checkpoint_signature_problem(
    *, sequence: int, hash: str, created_at: str, kid: str, signature: str
) -> str | None:
    """None when the checkpoint is signed by AUDIT_SIGNING_KEY or an old key; otherwise the
    problem code: `checkpoint.unknown_key` or `checkpoint.bad_signature`."""
    key = _signing_keys().get(kid)
    if key is None:
        return "checkpoint.unknown_key"
    expected = checkpoint_signature(key=key, sequence=sequence, hash=hash, created_at=created_at)
    return None if hmac.compare_digest(expected, str(signature)) else "checkpoint.bad_signature"


def checkpoint_dir() -> Path:
    return Path(settings.BACKUP_DIR) / "audit-checkpoints"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@transaction.atomic
def checkpoint_create() -> Checkpoint | None:
    """Sign the current chain head and store it here and in BACKUP_DIR; None when nothing new.

    Raises SigningKeyMissing without AUDIT_SIGNING_KEY.
    """
    if not settings.AUDIT_SIGNING_KEY:
        raise SigningKeyMissing("AUDIT_SIGNING_KEY is not set; audit checkpoints cannot be signed")
    head = ChainHead.objects.filter(pk=1).first()
    if head is None or head.sequence == 0:
        return None
    last = Checkpoint.objects.order_by("-sequence").first()
    if last is not None and last.sequence >= head.sequence:
        return None
    created = timezone.now()
    stamp = format_time(created)
    signature = checkpoint_signature(
        key=settings.AUDIT_SIGNING_KEY, sequence=head.sequence, hash=head.hash, created_at=stamp
    )
    path = checkpoint_dir() / checkpoint_file_name(sequence=head.sequence, hash=head.hash)
    checkpoint = Checkpoint.objects.create(
        sequence=head.sequence,
        hash=head.hash,
        created_at=created,
        key_id=key_id(settings.AUDIT_SIGNING_KEY),
        signature=signature,
        location=str(path),
    )
    document = checkpoint_document(
        sequence=head.sequence,
        hash=head.hash,
        created_at=stamp,
        key_id=checkpoint.key_id,
        signature=signature,
    )
    # Written before the commit: a failed write leaves no checkpoint in the database either.
    _write_atomically(path, document)
    # A copy for the witness outside this host, sent once the checkpoint is committed.
    witness.publications_create(checkpoint=checkpoint)
    return checkpoint


def stored_checkpoints(directory: Path | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Checkpoints found in the backup location, and the files that could not be read.

    `directory`: somewhere else, such as the witness's copies; every `*.json` file below it
    counts, whatever its name, since a witness may file them its own way.
    """
    found, unreadable = [], []
    paths = sorted(directory.rglob("*.json")) if directory is not None else None
    if paths is None:
        directory = checkpoint_dir()
        paths = sorted(directory.glob("checkpoint-*.json")) if directory.is_dir() else []
    for path in paths:
        try:
            document = json.loads(path.read_text())
            found.append({**document, "sequence": int(document["sequence"]), "file": str(path)})
        except (OSError, ValueError, KeyError, TypeError):
            unreadable.append(str(path))
    return found, unreadable


# Verification ---------------------------------------------------------------


def _as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _as_time(value: Any) -> dt.datetime:
    if isinstance(value, str):  # SQLite keeps UTC times as text without a zone
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def event_rows(from_id: int, to_id: int) -> Iterator[dict[str, Any]]:
    """Events `from_id`..`to_id` in id order, read in keyset chunks: constant memory for any
    chain length. Plain SQL, because the ORM's per-row conversions cost more than the hashing."""
    names = (*HASHED_FIELDS, "hash")
    # Fixed column and table names; the values are parameters.
    sql = f"SELECT {', '.join(names)} FROM audit_auditevent WHERE id > %s AND id <= %s "  # noqa: S608
    sql += "ORDER BY id LIMIT %s"
    after = from_id - 1
    with connection.cursor() as cursor:
        while True:
            cursor.execute(sql, [after, to_id, CHUNK])
            chunk = cursor.fetchall()
            if not chunk:
                return
            for values in chunk:
                row = dict(zip(names, values, strict=True))
                row["occurred_at"] = _as_time(row["occurred_at"])
                row["changes"] = _as_json(row["changes"])
                row["metadata"] = _as_json(row["metadata"])
                yield row
            after = chunk[-1][0]


class _Result:
    def __init__(self) -> None:
        self.problems: list[dict[str, Any]] = []
        self.first_bad_id: int | None = None
        self.chain_broken = False

    def chain(self, event_id: int, code: str, message: str) -> None:
        if not self.chain_broken:
            self.chain_broken = True
            self.first_bad_id = event_id
        self.problems.append(
            {"kind": "chain", "code": code, "event_id": event_id, "message": message}
        )

    def checkpoint(self, code: str, message: str, **where: Any) -> None:
        self.problems.append({"kind": "checkpoint", "code": code, "message": message, **where})


def _checkpoint_snapshot(
    from_id: int, to_id: int, elsewhere: Path | None = None
) -> tuple[list, list, list]:
    """The checkpoints in range, database and storage copies (and those in `elsewhere`), read
    once: one signed while the verification runs is left for the next run, not half-checked."""
    db = list(
        Checkpoint.objects.filter(sequence__gte=from_id, sequence__lte=to_id).order_by("sequence")
    )
    files, unreadable = stored_checkpoints()
    if elsewhere is not None:
        more, more_unreadable = stored_checkpoints(elsewhere)
        files, unreadable = files + more, unreadable + more_unreadable
    return db, [f for f in files if from_id <= f["sequence"] <= to_id], unreadable


def _check_checkpoints(result: _Result, hashes: dict[int, str], snapshot: tuple) -> int:
    db, files, unreadable = snapshot
    for path in unreadable:
        result.checkpoint(
            "checkpoint.unreadable", f"checkpoint file {path} cannot be read", file=path
        )

    def check(
        where: dict[str, Any], sequence: int, hash: str, created_at: str, kid: str, signature: str
    ) -> None:
        problem = checkpoint_signature_problem(
            sequence=sequence, hash=hash, created_at=created_at, kid=kid, signature=signature
        )
        if problem is not None:
            message = (
                f"checkpoint at #{sequence} is signed with unknown key {kid}"
                if problem == "checkpoint.unknown_key"
                else f"checkpoint at #{sequence} has an invalid signature"
            )
            result.checkpoint(problem, message, **where)
        if sequence not in hashes:
            result.checkpoint(
                "checkpoint.missing_event",
                f"checkpoint at #{sequence} names an event that is not in the chain",
                **where,
            )
        elif hashes[sequence] != hash:
            result.checkpoint(
                "checkpoint.hash_mismatch",
                f"event #{sequence} does not have the hash its checkpoint signed",
                **where,
            )

    for c in db:
        check(
            {"checkpoint_id": c.pk, "sequence": c.sequence},
            c.sequence,
            c.hash,
            format_time(c.created_at),
            c.key_id,
            c.signature,
        )
    signed_in_db = {(c.sequence, c.hash, c.signature) for c in db}
    for f in files:
        where = {"file": f["file"], "sequence": f["sequence"]}
        check(
            where,
            f["sequence"],
            str(f.get("hash")),
            str(f.get("created_at")),
            str(f.get("key_id")),
            str(f.get("signature")),
        )
        if (f["sequence"], f.get("hash"), f.get("signature")) not in signed_in_db:
            result.checkpoint(
                "checkpoint.not_in_database",
                f"checkpoint at #{f['sequence']} in storage is missing from the "
                "database or differs from it",
                **where,
            )
    return len(db) + len(files)


def chain_verify(
    *,
    from_id: int | None = None,
    to_id: int | None = None,
    triggered_by: str = "system",
    checkpoints_dir: Path | None = None,
) -> Verification:
    """Recompute every hash from `from_id` to `to_id` (the whole chain by default), check the
    links, the head and the signed checkpoints; store, announce (`chain_verified`, which the
    alerts about the trail answer) and audit the result.

    A range that starts after #1 trusts the stored hash of the event before it.
    `checkpoints_dir`: also check the checkpoint files there (the witness's copies).
    """
    started = timezone.now()
    full = from_id is None and to_id is None
    start = max(from_id or 1, 1)
    # The head pins the end, so events appended while this runs are left for the next run.
    head = ChainHead.objects.filter(pk=1).first()
    end = head.sequence if head else 0
    upper = min(to_id, end) if to_id is not None else end
    if not full and upper < start:
        # A typo must not page anyone with a "broken chain": there is nothing there to check.
        raise InvalidRange(
            f"no events between #{start} and #{to_id or end}; the chain ends at #{end}"
        )
    result = _Result()
    prev, prev_time = GENESIS_HASH, None
    if start > 1:
        before = AuditEvent.objects.filter(id=start - 1).values_list("hash", "occurred_at").first()
        if before is None:
            result.chain(start - 1, "chain.missing_event", f"event #{start - 1} is missing")
        prev, prev_time = before or (prev, None)
    checkpoints = _checkpoint_snapshot(start, upper, checkpoints_dir)
    checkpoint_seqs = {c.sequence for c in checkpoints[0]} | {f["sequence"] for f in checkpoints[1]}
    hashes: dict[int, str] = {}
    expected, checked = start, 0
    for row in event_rows(start, upper):
        checked += 1
        event_id = row["id"]
        recomputed = event_hash(content_of(row))
        if event_id in checkpoint_seqs:
            hashes[event_id] = recomputed
        if result.chain_broken:
            continue  # nothing after the first break can be trusted; keep counting
        if event_id != expected:
            result.chain(
                expected,
                "chain.missing_event",
                f"events #{expected} to #{event_id - 1} are missing",
            )
        elif row["prev_hash"] != prev:
            result.chain(
                event_id,
                "chain.link_broken",
                f"event #{event_id} does not link to the hash of event #{event_id - 1}: "
                f"an event before it was removed or reordered, or event #{event_id - 1} "
                "was changed and given a new hash",
            )
        elif recomputed != row["hash"]:
            result.chain(
                event_id,
                "chain.content_changed",
                f"event #{event_id} was changed after it was written",
            )
        elif prev_time is not None and row["occurred_at"] < prev_time:
            # Appending never goes back in time (audit/chain.py): a rewrite that re-dated an
            # event, so that the checkpoints' schedule would not notice, shows here.
            result.chain(
                event_id,
                "chain.time_reversed",
                f"event #{event_id} is dated before event #{event_id - 1}: the chain was "
                "rewritten and re-dated",
            )
        prev, prev_time, expected = row["hash"], row["occurred_at"], event_id + 1
    last_id = expected - 1
    if full and not result.chain_broken and head is not None:
        if head.sequence > last_id:
            result.chain(
                last_id + 1,
                "chain.missing_event",
                f"the chain head is at #{head.sequence} but the events end at "
                f"#{last_id}: events at the end were removed",
            )
        elif head.sequence != last_id or (last_id and head.hash != prev):
            result.chain(
                head.sequence, "chain.head_mismatch", "the chain head does not match the last event"
            )
    checkpoints_checked = _check_checkpoints(result, hashes, checkpoints)
    if result.chain_broken:
        status = VerificationStatus.BROKEN
    elif result.problems:
        status = VerificationStatus.CHECKPOINT_MISMATCH
    else:
        status = VerificationStatus.OK
    # Stored and announced before its own audit event, which may fail when appending is what
    # is broken: the alert must not depend on the trail being writable.
    verification = Verification.objects.create(
        started_at=started,
        finished_at=timezone.now(),
        triggered_by=triggered_by[:200],
        from_id=from_id,
        to_id=to_id,
        events_checked=checked,
        checkpoints_checked=checkpoints_checked,
        status=status,
        first_bad_id=result.first_bad_id,
        problems=result.problems[:100],
    )
    signals.chain_verified.send(sender=Verification, verification=verification)
    try:
        audit_record(
            action="audit.chain_verified",
            obj=verification,
            metadata={
                "status": status,
                "from_id": from_id,
                "to_id": to_id,
                "events_checked": checked,
                "first_bad_id": result.first_bad_id,
            },
        )
    except DatabaseError:
        logger.exception("Could not record verification %s in the audit trail", verification.pk)
    return verification


def chain_verify_or_queue(
    *, from_id: int | None = None, to_id: int | None = None, triggered_by: str
) -> Verification | str:
    """A verification asked for by a person (API, admin): run at once when it reads at most
    AUDIT_VERIFY_SYNC_LIMIT events, else queued for a worker. Returns the Verification, or
    the queued task's id."""
    if audit_verify_range_size(from_id=from_id, to_id=to_id) <= (settings.AUDIT_VERIFY_SYNC_LIMIT):
        return chain_verify(from_id=from_id, to_id=to_id, triggered_by=triggered_by)
    return async_task(
        "audit.tasks.verify_chain",
        from_id,
        to_id,
        triggered_by[:200],
        task_name="audit.verify_chain (requested)",
    )
