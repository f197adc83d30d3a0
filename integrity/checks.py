"""Integrity checks of the whole database: what the database itself cannot enforce.

Each is set-based: one query per model or per reference kind, with a count and a sample.
"""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast

from django.apps import apps
from django.conf import settings
from django.db import connection, models
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count, Exists, ExpressionWrapper, OuterRef, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from alerts.selectors import heartbeat_status
from audit.actions import catalogue
from audit.models import AuditEvent
from config.appconfig import project_app_labels
from config.registry import CheckContext, Finding, register
from integrity.constraints import check_enforced, unique_enforced
from integrity.models import CheckRun, DeadLetter
from integrity.operations import payload_references
from integrity.scheduling import schedules_held_back

# Models whose rows retention jobs delete say so (`purged_by_retention = True` on the model):
# an audit event may outlive such a row, and that is expected.
PURGED_FLAG = "purged_by_retention"


def checked_apps() -> tuple[str, ...]:
    """The apps whose constraints and references are checked: ours and the auth models."""
    return (*project_app_labels(), "auth")


def checked_models() -> list[type[models.Model]]:
    return [
        m
        for m in apps.get_models()
        if m._meta.app_label in checked_apps() and m._meta.managed and not m._meta.proxy
    ]


def _sample(qs, field: str, size: int) -> list:
    return list(qs.order_by(field).values_list(field, flat=True)[:size])


@register("integrity.migrations_applied", tag="integrity", severity="critical", explainable=False)
def migrations_applied(ctx: CheckContext) -> Iterator[Finding]:
    """Every migration on disk is applied to the database.

    An unapplied migration means the code expects columns, constraints or triggers that the
    database does not have (a deploy that skipped `migrate`)."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = [f"{m.app_label}.{m.name}" for m, _ in plan]
        yield Finding(
            message=f"{len(names)} migration(s) not applied: run `manage.py migrate`",
            count=len(names),
            key="unapplied",
            sample=names[: ctx.sample_size],
        )


@register("integrity.model_constraints", tag="integrity", severity="critical")
def model_constraints(ctx: CheckContext) -> Iterator[Finding]:
    """Existing rows satisfy every check constraint declared on the models.

    The database enforces them on write; rows that break one were written while the
    constraint was missing or disabled (a restore, a manual load, a table rebuild). A constraint
    PostgreSQL holds as validated is not rescanned: no row can break it
    (integrity/constraints.py)."""
    for model in checked_models():
        for constraint in model._meta.constraints:
            if not isinstance(constraint, models.CheckConstraint):
                continue
            if check_enforced(model, constraint.name):
                continue  # validated by PostgreSQL: no row can break it (integrity/constraints.py)
            # `condition = false` counts NULL as passing, as a CHECK constraint does.
            # The stubs leave BaseExpression out of what may be wrapped; Django wraps any.
            ok = ExpressionWrapper(
                constraint.condition,  # type: ignore[type-var]
                output_field=models.BooleanField(),
            )
            bad = model._base_manager.annotate(_ok=ok).filter(_ok=False)
            count = bad.count()
            if count:
                yield Finding(
                    message=f"{count} {model._meta.label} row(s) violate {constraint.name}",
                    count=count,
                    object_type=model._meta.label_lower,
                    key=constraint.name,
                    sample=_sample(bad, "pk", ctx.sample_size),
                )


def _unique_sets(model: type[models.Model]) -> Iterator[tuple[str, list[str], Q | None]]:
    for field in model._meta.local_concrete_fields:
        if field.unique and not field.primary_key:
            yield field.name, [field.attname], None
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and constraint.fields:
            names = [_attname(model, f) for f in constraint.fields]
            yield constraint.name, names, constraint.condition
    for fields in model._meta.unique_together:
        yield "unique_together", [_attname(model, f) for f in fields], None


def _attname(model: type[models.Model], name: str) -> str:
    """The column attribute of a field a unique constraint names (always a concrete field)."""
    return cast("models.Field[Any, Any]", model._meta.get_field(name)).attname


@register("integrity.duplicate_keys", tag="integrity", severity="critical")
def duplicate_keys(ctx: CheckContext) -> Iterator[Finding]:
    """No two rows share a business key (unique fields and unique constraints).

    One GROUP BY ... HAVING count(*) > 1 per key whose unique index is missing; duplicates exist
    only if it was missing when they were written. A key the database keeps unique (a valid unique
    index over its columns, integrity/constraints.py) cannot have them and is not rescanned: that
    is the audit trail's hashes, the entries' numbers, every primary and natural key."""
    for model in checked_models():
        for name, fields, condition in _unique_sets(model):
            if unique_enforced(model, fields, name=name, conditional=condition is not None):
                continue
            qs = model._base_manager.all()
            if condition is not None:
                qs = qs.filter(condition)
            for f in fields:
                qs = qs.filter(**{f"{f}__isnull": False})
            dupes = qs.values(*fields).annotate(_n=Count("pk")).filter(_n__gt=1).order_by(*fields)
            groups = list(dupes[: ctx.sample_size + 1])
            if not groups:
                continue
            total = dupes.count() if len(groups) > ctx.sample_size else len(groups)
            yield Finding(
                message=f"{total} duplicate {model._meta.label} key(s) on {', '.join(fields)}",
                count=total,
                object_type=model._meta.label_lower,
                key=name,
                sample=[{f: g[f] for f in fields} | {"rows": g["_n"]} for g in groups][
                    : ctx.sample_size
                ],
            )


def _deletion_actions() -> list[str]:
    return [a for a in catalogue() if a.endswith(".deleted")]


@register("integrity.audit_references", tag="integrity", severity="error")
def audit_references(ctx: CheckContext) -> Iterator[Finding]:
    """Audit events point at rows that exist: object references and actors.

    An event's object (type and id) or actor that no longer exists, with no deletion event
    recorded for it, means a row was deleted around the services and the trail."""
    deleted = AuditEvent.objects.filter(action__in=_deletion_actions())
    types = (
        AuditEvent.objects.exclude(object_id="")
        .values_list("object_type", flat=True)
        .distinct()
        .order_by()
    )
    for label in list(types):
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            continue
        if getattr(model, PURGED_FLAG, False) or model._meta.app_label not in checked_apps():
            continue
        # NOT EXISTS anti-joins, not NOT IN: PostgreSQL cannot hash a NOT IN subquery larger
        # than work_mem and would rescan it for every event.
        row = model._base_manager.annotate(_s=Cast("pk", models.CharField())).filter(
            _s=OuterRef("object_id")
        )
        recorded = deleted.filter(object_type=label, object_id=OuterRef("object_id"))
        gone = (
            AuditEvent.objects.filter(object_type=label)
            .exclude(object_id="")
            .filter(~Exists(row), ~Exists(recorded))
        )
        missing = list(gone.values_list("object_id", flat=True).distinct().order_by()[:1000])
        if missing:
            yield Finding(
                message=f"audit events refer to {len(missing)} {label} row(s) that no longer "
                "exist and were never recorded as deleted",
                count=len(missing),
                object_type=label,
                key="object",
                sample=sorted(missing)[: ctx.sample_size],
                details={"first_event": gone.order_by("id").values_list("id", flat=True).first()},
            )
    user_label = apps.get_model(settings.AUTH_USER_MODEL)._meta.label_lower
    missing_actors = _missing_actors(1000)
    if missing_actors:
        yield Finding(
            message=f"audit events name {len(missing_actors)} actor(s) whose user no longer "
            "exists and was never recorded as deleted",
            count=len(missing_actors),
            object_type=user_label,
            key="actor",
            sample=sorted(missing_actors)[: ctx.sample_size],
        )


def _missing_actors(limit: int) -> list[int]:
    """The first `limit` actor ids of audit events whose user is gone and whose deletion was never
    recorded.

    The trail holds a million events per few hundred users: rather than reading every event's
    actor, it steps from one distinct actor to the next through the actor_id index (a loose
    index scan: one index probe per actor, `min(actor_id) > previous`), and checks only those.
    Plain SQL that both engines run."""
    qn = connection.ops.quote_name
    events = qn(AuditEvent._meta.db_table)
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    users, pk = qn(user_model._meta.db_table), qn(user_model._meta.pk.column)
    actions = _deletion_actions()
    deleted = f"d.action IN ({', '.join(['%s'] * len(actions))})" if actions else "1 = 0"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH RECURSIVE actors(id) AS (
                    SELECT min(a.actor_id) FROM {events} a
                    UNION ALL
                    SELECT (SELECT min(n.actor_id) FROM {events} n WHERE n.actor_id > actors.id)
                      FROM actors WHERE actors.id IS NOT NULL)
                SELECT actors.id FROM actors
                 WHERE actors.id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM {users} u WHERE u.{pk} = actors.id)
                   AND NOT EXISTS (SELECT 1 FROM {events} d
                                    WHERE {deleted} AND d.object_type = %s
                                      AND d.object_id = CAST(actors.id AS VARCHAR))
                 ORDER BY actors.id LIMIT %s""",  # noqa: S608
            [*actions, user_model._meta.label_lower, limit],
        )
        return [row[0] for row in cursor.fetchall()]


@register("integrity.json_references", tag="integrity", severity="error")
def json_references(ctx: CheckContext) -> Iterator[Finding]:
    """Ids kept inside JSON (dead-letter payloads) point at rows that exist.

    A dead letter still waiting to be retried whose journal entry or user is gone can never
    succeed; it needs discarding with a reason. Which payload keys hold which model's ids, the
    registered operations declare (`references`)."""
    waiting = DeadLetter.objects.exclude(
        status__in=(DeadLetter.Status.RESOLVED, DeadLetter.Status.DISCARDED)
    )
    for key, label in payload_references().items():
        target = apps.get_model(label)
        refs = waiting.filter(payload__has_key=key).annotate(_text=KeyTextTransform(key, "payload"))
        # An id that is not a number cannot point at a row (and must not break the cast).
        numeric = refs.filter(_text__regex=r"^[0-9]{1,18}$").annotate(
            _ref=Cast("_text", models.BigIntegerField())
        )
        bad = refs.exclude(_text__regex=r"^[0-9]{1,18}$") | numeric.filter(
            ~Exists(target._base_manager.filter(pk=OuterRef("_ref")))
        )
        count = bad.count()
        if count:
            yield Finding(
                message=f"{count} open dead letter(s) refer to a missing "
                f"{target._meta.label} in payload.{key}",
                count=count,
                object_type=DeadLetter._meta.label_lower,
                key=key,
                sample=_sample(bad, "pk", ctx.sample_size),
            )


@register("integrity.impossible_states", tag="integrity", severity="error")
def impossible_states(ctx: CheckContext) -> Iterator[Finding]:
    """Rows of the integrity tables are in states their workflow cannot produce.

    Resolved or discarded dead letters without their time, finished check runs without an
    end. (Alerts' rows are `alerts.impossible_states`, the ledger's `finance.impossible_states`.)"""
    DL = DeadLetter.Status
    rules = [
        (
            DeadLetter,
            Q(status=DL.RESOLVED, resolved_at__isnull=True),
            "resolved without resolved_at",
        ),
        (
            DeadLetter,
            Q(status=DL.DISCARDED, discarded_at__isnull=True),
            "discarded without discarded_at",
        ),
        (
            CheckRun,
            Q(status__in=("pass", "warn", "fail", "error"), finished_at__isnull=True),
            "finished without finished_at",
        ),
    ]
    yield from states_findings(rules, ctx)


def states_findings(rules, ctx: CheckContext) -> Iterator[Finding]:
    """One finding per (model, condition, description) rule that matches rows."""
    for model, condition, what in rules:
        bad = model._base_manager.filter(condition)
        count = bad.count()
        if count:
            yield Finding(
                message=f"{count} {model._meta.label} row(s) {what}",
                count=count,
                object_type=model._meta.label_lower,
                key=what,
                sample=_sample(bad, "pk", ctx.sample_size),
            )


@register("integrity.scheduler_alive", tag="integrity", severity="critical", explainable=False)
def scheduler_alive(ctx: CheckContext) -> Iterator[Finding]:
    """The django-q2 cluster is running: its heartbeat job wrote within the allowed age.

    Without the cluster no scheduled check, escalation, retry or checkpoint runs."""
    status = heartbeat_status()
    if not status["ok"]:
        age = status["age_seconds"]
        yield Finding(
            message="no scheduler heartbeat yet"
            if age is None
            else f"last scheduler heartbeat {age:.0f} s ago "
            f"(limit {settings.ALERT_HEARTBEAT_MAX_AGE_SECONDS} s)",
            key="heartbeat",
            details=status,
        )


@register("integrity.schedules_running", tag="integrity", severity="error")
def schedules_running(ctx: CheckContext) -> Iterator[Finding]:
    """Every declared schedule will run when declared: none missing, paused or postponed.

    The admin may pause and reschedule jobs (audited), which can stop alert delivery, signed
    checkpoints and these checks without a word; a deliberate pause is explained here."""
    for held in schedules_held_back():
        when = f", next run {held['next_run']:%Y-%m-%d %H:%M} UTC" if held["next_run"] else ""
        yield Finding(
            message=f"schedule {held['name']} is {held['state']}{when}",
            object_type="django_q.schedule",
            key=f"{held['name']}:{held['state']}",
            details={"state": held["state"]},
        )


@register(
    "integrity.deadletter_queue",
    tag="integrity",
    severity="warning",
    error_at=None,
    alert_source="deadletters",
    alert_key="queue",
    explainable=False,
)
def deadletter_queue(ctx: CheckContext) -> Iterator[Finding]:
    """The dead-letter queue is within DEADLETTER_ALERT_COUNT and DEADLETTER_ALERT_AGE_MINUTES.

    Shares its alert (deadletters/queue) with the five-minute queue job, so one condition
    is one alert."""
    waiting = DeadLetter.objects.filter(
        status__in=(DeadLetter.Status.PENDING, DeadLetter.Status.RETRYING)
    )
    count = waiting.count()
    oldest = waiting.order_by("created_at").values_list("created_at", flat=True).first()
    age = (timezone.now() - oldest) if oldest else timedelta(0)
    limit = timedelta(minutes=settings.DEADLETTER_ALERT_AGE_MINUTES)
    if count >= settings.DEADLETTER_ALERT_COUNT or age >= limit:
        yield Finding(
            message=f"dead-letter queue: {count} waiting, oldest {age.total_seconds() / 60:.0f}"
            f" min old (limits {settings.DEADLETTER_ALERT_COUNT} letters, "
            f"{settings.DEADLETTER_ALERT_AGE_MINUTES} min)",
            count=count or 1,
            key="queue",
            sample=_sample(waiting, "pk", ctx.sample_size),
        )
