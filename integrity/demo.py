"""The demo's check history and dead letters (config/demo.py, `manage.py seed_demo`).

Every day of the context: the scheduled runs of every registered check (integrity and audit at
02:00, the finance reconciliation at 02:40, backups at 03:10), and the hourly finance runs over
the last few days, mostly passing, with a dead-letter warning now and then and a few failing
spells with their findings. The last days leave a problem open, one explained (through
`finding_explain`) and two dead letters waiting (through `deadletter_create`, from the payload
the transaction manager keeps for a journal entry's posting).

Past runs are written directly (bulk_create): the check-run service runs the checks now and
cannot back-date a run. They are not audited rows, and no alert is raised for history.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.apps import apps
from django.db import transaction
from django.utils import timezone

from config import registry
from config.demo import DemoContext, DemoHistory
from integrity import services
from integrity.exceptions import UnknownOperation
from integrity.models import CheckResult, CheckRun, Finding
from integrity.operations import operation_get
from integrity.services.checkruns import check_outcome, finding_row

# (schedule, tags, start): as integrity/schedules.py and backups/schedules.py declare them.
DAILY: tuple[tuple[str, tuple[str, ...], time], ...] = (
    ("checks.integrity", ("integrity", "audit"), time(2, 0)),
    ("checks.reconciliation", ("finance",), time(2, 40)),
    ("checks.backups", ("backups",), time(3, 10)),
)
HOURLY = "checks.finance_hourly"
HOURLY_DAYS = 3
HOURLY_WINDOW = timedelta(hours=2)


@dataclass(frozen=True)
class Spell:
    """A problem a check finds from `first` to `last` (days before today, inclusive)."""

    check: str
    first: int
    last: int
    finding: registry.Finding


def _spells(ctx: DemoContext, checks: dict[str, registry.Check]) -> list[Spell]:
    """The year's trouble: short failing spells fixed within days, dead-letter warnings, and
    the problems still there today."""
    rnd = ctx.rnd
    year = ctx.today.year
    spells = [
        # Still open today: a witness copy that never arrived (email is not set up).
        Spell(
            "audit.checkpoints_witnessed",
            1,
            0,
            registry.Finding(
                message="Checkpoint #412 has no witness receipt 26 hours after signing",
                object_type="audit.checkpoint",
                object_id="412",
            ),
        ),
        # Explained today (see `_explain`): numbers voided by a re-run import.
        Spell(
            "finance.entry_number_gaps",
            2,
            0,
            registry.Finding(
                message=f"Entry numbers {year}-000412 to {year}-000413 are missing",
                count=2,
                key=str(year),
                sample=[f"{year}-000412", f"{year}-000413"],
            ),
        ),
    ]
    trouble = [
        (
            "integrity.scheduler_alive",
            "No scheduler heartbeat for 47 minutes (limit 3 minutes)",
            {},
        ),
        (
            "finance.balance_cache",
            "Account 1100 Accounts receivable: cached balance differs from its lines by 12.40",
            {"difference": "12.40"},
        ),
        ("backups.last_backup_recent", "No verified backup in the last 26 hours", {}),
        ("audit.verification_recent", "The audit chain was last verified 9 days ago", {}),
        (
            "finance.closed_period_postings",
            "1 entry posted into closed period {year}-03",
            {"period": "{year}-03"},
        ),
        (
            "integrity.json_references",
            "1 open dead letter(s) refer to a missing finance.JournalEntry in payload.entry_id",
            {},
        ),
    ]
    trouble = [(name, msg, d) for name, msg, d in trouble if name in checks]
    for n in range(max(3, ctx.days // 30)):
        name, message, details = trouble[n % len(trouble)]
        first = rnd.randint(5, max(6, ctx.days - 1))
        finding = registry.Finding(
            message=message.format(year=year),
            object_id=str(rnd.randint(100, 999)),
            details={k: v.format(year=year) for k, v in details.items()},
        )
        spells.append(Spell(name, first, max(3, first - rnd.randint(0, 2)), finding))
    for _ in range(max(2, ctx.days // 15)):  # the queue held a letter for a while
        day = rnd.randint(3, max(4, ctx.days - 1))
        letters, minutes = rnd.randint(1, 3), rnd.randint(61, 140)
        first = rnd.randint(1, 90)
        finding = registry.Finding(
            message=f"dead-letter queue: {letters} waiting, oldest {minutes} min old "
            "(limits 10 letters, 60 min)",
            count=letters,
            key="queue",
            sample=list(range(first, first + letters)),
        )
        spells.append(Spell("integrity.deadletter_queue", day, day, finding))
    return [s for s in spells if s.check in checks]


def _at(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=timezone.get_current_timezone())


class _Writer:
    """Collects runs, results and findings in memory, then writes them in a few statements."""

    def __init__(self, ctx: DemoContext, checks: dict[str, registry.Check], spells: list[Spell]):
        self.ctx, self.checks, self.rnd = ctx, checks, ctx.rnd
        self.by_check: dict[str, list[Spell]] = {}
        for spell in spells:
            self.by_check.setdefault(spell.check, []).append(spell)
        self.runs: list[tuple[CheckRun, list[tuple[CheckResult, list[Finding]]]]] = []

    def run(self, *, schedule: str, tags: tuple[str, ...], at: datetime, ago: int) -> None:
        windowed = schedule == HOURLY
        results: list[tuple[CheckResult, list[Finding]]] = []
        clock = at + timedelta(milliseconds=self.rnd.randint(20, 200))
        for check in registry.select(tags=tags):
            found = [
                s.finding for s in self.by_check.get(check.name, ()) if s.last <= ago <= s.first
            ]
            duration = self.rnd.randint(3, 60) if windowed else self.rnd.randint(8, 900)
            failing = sum(f.count for f in found)
            warn_at, error_at = check.thresholds
            status = check_outcome(failing, warn_at, error_at)
            result = CheckResult(
                check_name=check.name,
                tag=check.tag,
                severity=check.severity,
                status=status,
                failing_count=failing,
                warn_at=warn_at,
                error_at=error_at,
                started_at=clock,
                duration_ms=duration,
            )
            findings = [
                finding_row(
                    check, f, fingerprint=f.fingerprint(check.name), sample_size=len(f.sample)
                )
                for f in found
            ]
            results.append((result, findings))
            clock += timedelta(milliseconds=duration + 5)
        summary: dict[str, int] = {}
        for result, _ in results:
            summary[result.status] = summary.get(result.status, 0) + 1
        order = ("pass", "warn", "fail", "error")
        worst = max(summary, key=order.index, default="pass")
        run = CheckRun(
            trigger=CheckRun.Trigger.SCHEDULE,
            schedule=schedule,
            tags=list(tags),
            since=at - HOURLY_WINDOW if windowed else None,
            status=worst,
            started_at=at,
            finished_at=clock,
            duration_ms=int((clock - at).total_seconds() * 1000),
            summary=summary,
        )
        run.created_at = at  # kept by the bulk_update in `write` (bulk_create stamps now)
        self.runs.append((run, results))

    def write(self) -> tuple[int, int, int]:
        runs = [run for run, _ in self.runs]
        stamps = [run.created_at for run in runs]
        CheckRun.objects.bulk_create(runs, batch_size=500)
        for run, stamp in zip(runs, stamps, strict=True):
            run.created_at = stamp
        CheckRun.objects.bulk_update(runs, ["created_at"], batch_size=500)
        results = []
        for run, pairs in self.runs:
            for result, _ in pairs:
                result.run = run
                results.append(result)
        CheckResult.objects.bulk_create(results, batch_size=1000)
        findings = []
        for run, pairs in self.runs:
            for result, found in pairs:
                for finding in found:
                    finding.run, finding.result = run, result
                    findings.append(finding)
        Finding.objects.bulk_create(findings, batch_size=1000)
        return len(runs), len(results), len(findings)


def _explain(ctx: DemoContext) -> int:
    """The approver explains the number gap's latest finding, through the service."""
    finding = (
        Finding.objects.filter(check_name="finance.entry_number_gaps")
        .order_by("-run__created_at", "-pk")
        .first()
    )
    if finding is None:
        return 0
    services.finding_explain(
        finding=finding,
        actor=ctx.users["approver"],
        reason="Numbers voided when the October bank import was re-run (ticket FIN-88); "
        "no entry is missing.",
    )
    return 1


def _dead_letters(ctx: DemoContext) -> int:
    """Two postings that outlasted the transaction manager's retries, kept as it keeps them:
    the operation's name, its payload (the entry and the approver) and its key."""
    try:
        operation = operation_get("finance.journal_entry_post")
    except UnknownOperation:
        return 0
    label = operation.references.get("entry_id")
    if label is None:
        return 0
    # The entry model is found the way integrity.json_references finds it: by the label the
    # operation declares (integrity sits below finance and does not import it).
    entries = list(
        apps.get_model(label)._base_manager.order_by("-pk").values_list("pk", flat=True)[:2]
    )
    errors = [
        "OperationalError: could not serialize access due to concurrent update "
        "(5 attempts over 3.1 s)",
        "OperationalError: server closed the connection unexpectedly (5 attempts over 4.8 s)",
    ]
    approver = ctx.users["approver"]
    for entry_id, error in zip(entries, errors, strict=False):
        services.deadletter_create(
            operation=operation.name,
            payload={"entry_id": entry_id, "actor_id": approver.pk},
            idempotency_key=f"demo-post-{entry_id}",
            error=error,
            traceback=f"Traceback (most recent call last):\n  ...\n{error}\n",
        )
    return len(entries)


def seed_history(ctx: DemoContext) -> str:
    names = [schedule for schedule, _, _ in DAILY] + [HOURLY]
    if CheckRun.objects.filter(
        schedule__in=names, created_at__lt=ctx.now - timedelta(days=2)
    ).exists():
        return "integrity: check history already there"
    checks = registry.all_checks()
    writer = _Writer(ctx, checks, _spells(ctx, checks))
    for ago in range(ctx.days, -1, -1):
        day = date.fromordinal(ctx.today.toordinal() - ago)
        for schedule, tags, at in DAILY:
            start = _at(day, at)
            if start <= ctx.now:
                writer.run(schedule=schedule, tags=tags, at=start, ago=ago)
        if ago < HOURLY_DAYS:
            for hour in range(24):
                start = _at(day, time(hour, 10))
                if start <= ctx.now:
                    writer.run(schedule=HOURLY, tags=("finance",), at=start, ago=ago)
    # Checks that ran for real during the demo (finance's seeder closes past periods through
    # `period_close`, which runs the financial checks) are newer than every run above, and the
    # page shows each check's latest result: the day's story ends with one more run of their
    # tags, stamped now, after them (else the explained finding below is never on the page).
    real_tags = sorted(
        {
            tag
            for tags in CheckRun.objects.filter(created_at__gt=ctx.now).values_list(
                "tags", flat=True
            )
            for tag in tags
        }
    )
    if real_tags:
        writer.run(schedule=HOURLY, tags=tuple(real_tags), at=timezone.now(), ago=0)
    with transaction.atomic():
        runs, results, findings = writer.write()
    explained = _explain(ctx)
    letters = _dead_letters(ctx)
    return (
        f"integrity: {runs} check runs ({results} results, {findings} findings, "
        f"{explained} explained) and {letters} dead letters"
    )


DEMO = [DemoHistory(name="integrity.history", order=30, seed=seed_history)]
