"""Rows of the integrity app (and of django-q2, whose tasks and schedules it watches), for
arranging a test's state directly; `.build()` where no database is needed."""

from datetime import timedelta

import factory
from django.utils import timezone
from django_q.models import Schedule, Task

from integrity.models import (
    CheckResult,
    CheckRun,
    CheckStatus,
    DeadLetter,
    Finding,
    IdempotencyKey,
    OperationRecord,
)
from tests.factories import UserFactory


class DeadLetterFactory(factory.django.DjangoModelFactory):
    """A pending operation letter; pass `status`, `payload`, `kind` to vary it."""

    class Meta:
        model = DeadLetter

    operation = "test.operation"
    payload = factory.LazyFunction(dict)


class OperationRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OperationRecord

    key = factory.Sequence(lambda n: f"test-key-{n}")
    name = "test.operation"
    payload_hash = "0" * 64
    result = None


class IdempotencyKeyFactory(factory.django.DjangoModelFactory):
    """A client's claim of an Idempotency-Key, still in progress and valid for a day."""

    class Meta:
        model = IdempotencyKey

    user = factory.SubFactory(UserFactory)
    key = factory.Sequence(lambda n: f"key-{n}")
    scope = "POST /api/v1/entries/"
    request_hash = "0" * 64
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))


class CheckRunFactory(factory.django.DjangoModelFactory):
    """A queued run of every check, as `checkrun_create` records one from the command line."""

    class Meta:
        model = CheckRun

    trigger = CheckRun.Trigger.COMMAND


class CheckResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CheckResult

    run = factory.SubFactory(CheckRunFactory)
    check_name = factory.Sequence(lambda n: f"test.check_{n}")
    tag = "test"
    severity = "error"
    status = CheckStatus.PASS
    started_at = factory.LazyFunction(timezone.now)


class FindingFactory(factory.django.DjangoModelFactory):
    """A finding of a failing result, in that result's run."""

    class Meta:
        model = Finding

    result = factory.SubFactory(CheckResultFactory, status=CheckStatus.FAIL, failing_count=1)
    run = factory.SelfAttribute("result.run")
    check_name = factory.SelfAttribute("result.check_name")
    severity = factory.SelfAttribute("result.severity")
    message = factory.Sequence(lambda n: f"row {n} is bad")
    fingerprint = factory.Sequence(lambda n: f"{n:040x}")


class TaskFactory(factory.django.DjangoModelFactory):
    """A finished django-q2 task, as its cluster stores one."""

    class Meta:
        model = Task

    id = factory.Sequence(lambda n: f"{n:032x}")
    name = factory.LazyAttribute(lambda t: f"task-{t.id}")
    func = "integrity.tasks.purge_operation_records"
    started = factory.LazyFunction(timezone.now)
    stopped = factory.LazyFunction(timezone.now)
    success = True
    attempt_count = 1


class ScheduleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Schedule

    name = factory.Sequence(lambda n: f"schedule-{n}")
    func = "integrity.tasks.purge_expired_idempotency_keys"
    schedule_type = Schedule.DAILY
