"""The demo's alerting (config/demo.py, `manage.py seed_demo`): the context's days of alerts
raised, acknowledged and resolved with their timelines, two alerts open now (an error firing
unacknowledged, a warning acknowledged), a silence in force and an upcoming maintenance window.

The history is written directly (bulk_create): raise_alert, alert_acknowledge and alert_resolve
take no time, they stamp "now". Its deliveries are rows marked as sent in the past; nothing is
sent or queued for them. What happens now goes through the services (raise_alert,
alert_acknowledge, silence_create, silence_approve), which write the audit events. Alerting
configuration has no services (the audited admin records its changes): the demo's targets,
policy and route are created directly, and only when there is no policy yet.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from alerts import services
from alerts.exceptions import AlertNotOpen
from alerts.models import (
    Alert,
    AlertEvent,
    AlertState,
    Channel,
    Delivery,
    EscalationPolicy,
    EscalationStep,
    Route,
    Severity,
    Target,
)
from config.demo import DemoContext, DemoHistory

# Where the demo's notifications would go: addresses under .example, which no one receives.
TARGETS = [
    ("Northwind on-call", "oncall@northwind.example", 0),
    ("Northwind operations lead", "ops-lead@northwind.example", 15),
]
SENT_NOTE = "seeded demo history: not sent"

# (source, key, severity, title, weight): what Northwind's controls raise over a year.
KINDS: list[tuple[str, str, str, str, int]] = [
    ("thresholds", "p95-latency", "error", "p95 latency above 500 ms for 10 minutes", 8),
    ("thresholds", "error-rate", "critical", "Over 2 % of requests answered 5xx for 5 min", 2),
    ("thresholds", "queue-backlog", "error", "A due task waited over 5 minutes", 5),
    ("thresholds", "days-until-disk-full", "warning", "Disk full in under 14 days at this rate", 4),
    ("thresholds", "deadlocks-rising", "warning", "PostgreSQL counted deadlocks this hour", 3),
    ("deadletters", "queue", "warning", "Dead-letter queue above its thresholds", 6),
    ("operations", "finance.journal_entry_approve", "error", "Approval failed: dead letter", 3),
    ("checks", "finance.negative_balances", "error", "finance.negative_balances: 1 finding", 2),
    ("checks", "integrity.schedules_running", "error", "A declared schedule is paused", 2),
    ("backups", "drill_failed", "critical", "Restore drill failed: row counts differ", 1),
    ("errors", "5d41402abc4b2a76", "error", "New error: TimeoutError: bank feed timed out", 4),
    ("test", "send_test_alert", "info", "Ledgerguard test alert: delivery works", 2),
]


def seed_alerts(ctx: DemoContext) -> str:
    if Alert.objects.filter(first_seen__lt=ctx.now - timedelta(days=1)).exists():
        return "Alerts: history already there; nothing added."
    policy, steps = _policy()
    history = _History(ctx, policy, steps)
    day = ctx.start
    while day < ctx.today:
        history.day(day)
        day += timedelta(days=1)
    history.save()
    firing, acknowledged = _open_now(ctx, policy, steps)
    _silences(ctx)
    return (
        f"Alerts: {len(history.alerts)} raised and resolved from {ctx.start} to {ctx.today} "
        f"({len(history.events)} events, {len(history.deliveries)} deliveries marked as sent), "
        f"{firing} firing and {acknowledged} acknowledged now, a silence and a maintenance window."
    )


DEMO = [DemoHistory(name="alerts.history", order=50, seed=seed_alerts)]


def _policy() -> tuple[EscalationPolicy | None, list[tuple[EscalationStep, list[Target]]]]:
    """The policy the demo's alerts route to: the first route's, or a new one when no policy
    exists; with its steps and their active targets."""
    route = Route.objects.filter(is_active=True).select_related("policy").first()
    if route is None and not EscalationPolicy.objects.exists():
        policy = EscalationPolicy.objects.create(name="Northwind default")
        for position, (name, address, delay) in enumerate(TARGETS):
            target = Target.objects.create(name=name, channel=Channel.EMAIL, address=address)
            step = EscalationStep.objects.create(
                policy=policy, position=position, delay_minutes=delay
            )
            step.targets.add(target)
        route = Route.objects.create(
            name="Everything from warning up", min_severity=Severity.WARNING, policy=policy
        )
    if route is None:
        return None, []
    steps = EscalationStep.objects.filter(policy=route.policy).prefetch_related("targets")
    return route.policy, [
        (s, [t for t in s.targets.all() if t.is_active]) for s in steps.order_by("position")
    ]


@dataclass
class _Seeded:
    alert: Alert
    first_seen: datetime


class _History:
    """The history rows, built in memory and written with bulk_create."""

    def __init__(
        self,
        ctx: DemoContext,
        policy: EscalationPolicy | None,
        steps: list[tuple[EscalationStep, list[Target]]],
    ) -> None:
        self.ctx, self.policy, self.steps = ctx, policy, steps
        self.users = [ctx.users["operator"], ctx.users["operator"], ctx.users["admin"]]
        self.weights = [k[4] for k in KINDS]
        self.alerts: list[_Seeded] = []
        # Per alert (by index): its events and deliveries, with the times they happened.
        self.events: list[tuple[int, AlertEvent, datetime]] = []
        self.deliveries: list[tuple[int, Delivery, datetime]] = []

    def day(self, day: date) -> None:
        rnd = self.ctx.rnd
        count = rnd.choices([0, 1, 2, 3, 5], weights=[30, 35, 20, 10, 5])[0]
        if day.weekday() >= 5:
            count = count // 2
        for _ in range(count):
            source, key, severity, title, _w = rnd.choices(KINDS, weights=self.weights)[0]
            at = datetime.combine(day, time(rnd.randrange(24), rnd.randrange(60)))
            self._alert(day, timezone.make_aware(at), source, key, severity, title)

    def _alert(
        self, day: date, raised: datetime, source: str, key: str, severity: str, title: str
    ) -> None:
        rnd = self.ctx.rnd
        index = len(self.alerts)
        routed = self.policy is not None and severity != Severity.INFO
        # The team gets quicker over the year: the median time to acknowledge falls.
        progress = (day - self.ctx.start).days / max(self.ctx.days, 1)
        ack_after = timedelta(minutes=1 + rnd.expovariate(1 / (25 - 17 * progress)))
        acknowledged = routed and rnd.random() < (0.6 if severity == Severity.WARNING else 0.9)
        ack_at = raised + ack_after if acknowledged else None
        resolved_at = (ack_at or raised) + timedelta(minutes=rnd.randint(4, 240))
        by_hand = acknowledged and rnd.random() < 0.4
        actor = rnd.choice(self.users)
        occurrences = rnd.choice([1, 1, 1, 2, 3, 5, 12])
        alert = Alert(
            source=source,
            key=key,
            severity=severity,
            title=title,
            details={"seen_by": f"{source} control"},
            state=AlertState.RESOLVED,
            occurrences=occurrences,
            last_seen=raised + (resolved_at - raised) / 2,
            acknowledged_at=ack_at,
            acknowledged_by=actor if acknowledged else None,
            resolved_at=resolved_at,
            resolved_by=actor if by_hand else None,
            policy=self.policy if routed else None,
            step=-1,
        )
        self.alerts.append(_Seeded(alert, raised))
        self._event(index, "raised", raised, note=title)
        if occurrences > 1:
            self._event(index, "repeated", alert.last_seen, note=f"occurrence {occurrences}")
        if routed:
            delay = timedelta()
            for position, (step, targets) in enumerate(self.steps):
                delay += timedelta(minutes=step.delay_minutes)
                if ack_at is not None and raised + delay >= ack_at:
                    break
                if raised + delay >= resolved_at:
                    break
                alert.step = position
                at = raised + delay + timedelta(seconds=rnd.randint(1, 20))
                self._event(index, "escalated_to_step", at, note=f"step {position} round 0")
                for target in targets:
                    self._delivery(index, target, Delivery.Kind.NOTIFY, position, at)
        if ack_at is not None:
            self._event(index, "acknowledged", ack_at, actor=actor)
        note = "resolved by hand" if by_hand else "resolved by its source"
        self._event(index, "resolved", resolved_at, actor=actor if by_hand else None, note=note)
        if alert.step >= 0:
            for target in self.steps[0][1]:
                self._delivery(index, target, Delivery.Kind.RESOLVED, 0, resolved_at)

    def _event(
        self, index: int, kind: str, at: datetime, *, actor: Any = None, note: str = ""
    ) -> None:
        self.events.append((index, AlertEvent(kind=kind, actor=actor, note=note), at))

    def _delivery(self, index: int, target: Target, kind: str, step: int, at: datetime) -> None:
        delivery = Delivery(
            target=target,
            channel=target.channel,
            kind=kind,
            step=step,
            status=Delivery.Status.SENT,
            attempts=1,
            sent_at=at,
            response=SENT_NOTE,
        )
        self.deliveries.append((index, delivery, at))

    @transaction.atomic
    def save(self) -> None:
        alerts = Alert.objects.bulk_create([s.alert for s in self.alerts], batch_size=500)
        for alert, seeded in zip(alerts, self.alerts, strict=True):
            alert.first_seen = seeded.first_seen
        for index, event, _at in self.events:
            event.alert = alerts[index]
        for index, delivery, _at in self.deliveries:
            delivery.alert = alerts[index]
        events = AlertEvent.objects.bulk_create([e for _i, e, _a in self.events], batch_size=500)
        deliveries = Delivery.objects.bulk_create(
            [d for _i, d, _a in self.deliveries], batch_size=500
        )
        # first_seen, at and created_at are auto_now_add: bulk_create stamped them "now"; the
        # history's own times are put back in a second, batched statement.
        for event, (_i, _e, at) in zip(events, self.events, strict=True):
            event.at = at
        for delivery, (_i, _d, at) in zip(deliveries, self.deliveries, strict=True):
            delivery.created_at = at
        Alert.objects.bulk_update(alerts, ["first_seen"], batch_size=500)
        AlertEvent.objects.bulk_update(events, ["at"], batch_size=500)
        Delivery.objects.bulk_update(deliveries, ["created_at"], batch_size=500)


@transaction.atomic
def _open_now(
    ctx: DemoContext,
    policy: EscalationPolicy | None,
    steps: list[tuple[EscalationStep, list[Target]]],
) -> tuple[int, int]:
    """An error firing unacknowledged (its first step notified, the next one due in a quarter
    of an hour) and a warning acknowledged. One transaction: raise_alert's dispatch of the
    escalation job runs on commit, when the first step already stands as notified, so the job
    finds nothing due and nothing is sent by seeding."""
    firing = services.raise_alert(
        source="errors",
        key="9e107d9d372bb682",
        severity=Severity.ERROR,
        title="New error: ConnectionResetError: the bank feed closed the connection",
        details={"group": "9e107d9d372bb682", "count": 3, "first_path": "/api/v1/payments/"},
    )
    fired = 0
    if firing is not None and firing.state == AlertState.FIRING:
        fired = 1
        if firing.policy_id is not None and steps and firing.step < 0:
            # The escalation job would send now; the demo records its first step as sent.
            now = timezone.now()
            for target in steps[0][1]:
                Delivery.objects.create(
                    alert=firing,
                    target=target,
                    channel=target.channel,
                    step=0,
                    status=Delivery.Status.SENT,
                    attempts=1,
                    sent_at=now,
                    response=SENT_NOTE,
                )
            AlertEvent.objects.create(alert=firing, kind="escalated_to_step", note="step 0 round 0")
            following = steps[1][0].delay_minutes if len(steps) > 1 else None
            Alert.objects.filter(pk=firing.pk).update(
                step=0,
                next_escalation_at=now + timedelta(minutes=following) if following else None,
            )
    warning = services.raise_alert(
        source="thresholds",
        key="days-until-disk-full",
        severity=Severity.WARNING,
        title="Disk full in under 14 days at this rate (11.5 days)",
        details={"days_left": 11.5, "volume": "/var/lib/postgresql"},
    )
    acked = 0
    if warning is not None:
        try:
            services.alert_acknowledge(alert=warning, actor=ctx.users["operator"])
            acked = 1
        except AlertNotOpen:
            pass  # someone (another seeder) got there first: it is acknowledged or resolved
    return fired, acked


def _silences(ctx: DemoContext) -> None:
    """A silence in force (a known warning) and next Sunday's maintenance window (approved by a
    second operator, as one that could cover critical alerts must be)."""
    now = timezone.now()
    operator, admin = ctx.users["operator"], ctx.users["admin"]
    services.silence_create(
        actor=operator,
        reason="The volume grows by 200 GB on Thursday (change CHG-1042); until then the "
        "disk-trend warning is known.",
        source="thresholds",
        key_pattern="days-until-disk-full",
        severity=Severity.WARNING,
        starts_at=now - timedelta(hours=3),
        ends_at=now + timedelta(days=2),
    )
    saturday = ctx.today + timedelta(days=(5 - ctx.today.weekday()) % 7 or 7)
    starts = timezone.make_aware(datetime.combine(saturday, time(0, 0)))
    window = services.silence_create(
        actor=operator,
        reason="Database patching: every Sunday 01:00-03:00 London time for the quarter.",
        starts_at=starts,
        ends_at=starts + timedelta(days=91),
        weekdays="7",
        window_start=time(1, 0),
        window_end=time(3, 0),
        timezone_name="Europe/London",
    )
    services.silence_approve(silence=window, actor=admin)
