"""Helpers the audit tests share.

The chain (test_chain*.py): events recorded one transaction each, verified, read back; and
tampering as a database superuser would: triggers off, change rows, triggers back on. For the
capture tests (test_capture_*.py), the trail a test wrote and the requests that write it. For the
API tests (test_api_*.py), the documented error shape.
"""

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import Max
from django.test import Client

from alerts import services as alerting
from audit import db_guards, services
from audit.canonical import GENESIS_HASH, content_of, event_hash
from audit.models import AuditEvent, Verification
from tests.alerts.factories import DeliveryFactory, TargetFactory

UA = "capture-test-agent/1.0"
IP = "203.0.113.9"


# The chain, and tampering with it ------------------------------------------------------------


def record(n: int, prefix: str = "test.event") -> None:
    for i in range(n):
        with transaction.atomic():
            services.audit_record(action=f"{prefix}.{i}", metadata={"i": i})


def verify(**kwargs) -> Verification:
    return services.chain_verify(triggered_by="test", **kwargs)


def chain() -> list[AuditEvent]:
    return list(AuditEvent.objects.order_by("id"))


@contextmanager
def triggers_off(*tables: str) -> Iterator[object]:
    """A cursor with the audit guards of `tables` disabled (PostgreSQL) or dropped (SQLite),
    and put back afterwards."""
    with connection.cursor() as cursor:
        for t in tables:
            if connection.features.disables_triggers:
                cursor.execute(f"ALTER TABLE {t} DISABLE TRIGGER USER")
            else:
                for name in db_guards.SQLITE_TRIGGERS:
                    if name.startswith(t):
                        cursor.execute(f"DROP TRIGGER {name}")
        yield cursor
        for t in tables:
            if connection.features.disables_triggers:
                cursor.execute(f"ALTER TABLE {t} ENABLE TRIGGER USER")
            else:
                for sql in db_guards.sqlite_statements():
                    if f" ON {t} " in sql:
                        cursor.execute(sql)


def tamper(*sqls: str, params=None, table: str = "audit_auditevent") -> None:
    with triggers_off(table) as cursor:
        for sql in sqls:
            cursor.execute(sql, params)


def rewrite_chain(*, change_id: int, actor_repr: str) -> None:
    """Change one event and recompute every hash after it, and the head: a consistent forgery
    that only the signed checkpoints can expose."""
    before = AuditEvent.objects.filter(id=change_id - 1).values_list("hash", flat=True).first()
    prev = before or GENESIS_HASH
    rows = []
    for event in AuditEvent.objects.filter(id__gte=change_id).order_by("id"):
        if event.id == change_id:
            event.actor_repr = actor_repr
        event.prev_hash = prev
        prev = event_hash(content_of(event))
        rows.append([event.actor_repr, event.prev_hash, prev, event.id])
    with triggers_off("audit_auditevent", "audit_chainhead") as cursor:
        cursor.executemany(
            "UPDATE audit_auditevent SET actor_repr = %s, prev_hash = %s, hash = %s WHERE id = %s",
            rows,
        )
        cursor.execute("UPDATE audit_chainhead SET hash = %s", [prev])


# The trail a capture test reads --------------------------------------------------------------


class Trail:
    """The events written since the last mark."""

    def __init__(self) -> None:
        self.mark()

    def mark(self) -> None:
        self.start = AuditEvent.objects.aggregate(m=Max("id"))["m"] or 0

    def events(self, *actions: str) -> list[AuditEvent]:
        qs = AuditEvent.objects.filter(id__gt=self.start).order_by("id")
        return list(qs.filter(action__in=actions) if actions else qs)

    def actions(self, prefix: str = "") -> list[str]:
        return [e.action for e in self.events() if e.action.startswith(prefix)]

    def one(self, action: str) -> AuditEvent:
        found = self.events(action)
        assert len(found) == 1, f"{action}: {len(found)} events; trail {self.actions()}"
        return found[0]


def stored_text() -> str:
    """Everything an event says, as stored (the hashes left out: hex would match anything)."""
    rows = AuditEvent.objects.values(
        "actor_repr",
        "user_agent",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "changes",
        "metadata",
    )
    return json.dumps(list(rows), default=str)


def logged_in(user, **kwargs) -> Client:
    """A client with a session; logging in writes auth.login, so mark the trail after this."""
    client = Client(**kwargs)
    client.force_login(user)
    return client


def notification(alert):
    """A sent email notification of `alert`, the kind that carries an acknowledge link."""
    target = TargetFactory(name="on-call", channel="email", address="oncall@example.com")
    return DeliveryFactory(alert=alert, target=target, status="sent")


def raise_capture(severity="warning", key="disk"):
    return alerting.raise_alert(
        source="capture", key=key, severity=severity, title="Disk full", details={"free": "1%"}
    )


# The API's error shape -----------------------------------------------------------------------


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert set(body["error"]) == {"code", "message", "fields"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def redate(k: int) -> None:
    """A consistent rewrite that dates event k an hour before k-1 (only the time order shows)."""
    events = {e.id: e for e in AuditEvent.objects.order_by("id")}
    events[k].occurred_at = events[k - 1].occurred_at - dt.timedelta(hours=1)
    prev, rows = events[k - 1].hash, []
    for event_id in range(k, max(events) + 1):
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
