"""Events anyone can cause at will (a bogus token, a refused login, a denied request), bounded:
recorded in full up to a limit per client and window, then only counted and summarised."""

import datetime as dt
import ipaddress
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import RepeatCounter
from audit.services.record import audit_record
from config import context

REPEAT_BY_LIMIT = 20  # names kept per window; the rest count under "(others)"
ALL_ADDRESSES = "*"


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
