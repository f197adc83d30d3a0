"""Rows of the audit trail, for arranging a test's state; `.build()` where no database is needed.

Events are recorded the way production records them, through `audit_record` in a request
context, so that they join the hash chain with their id, time and hash; tests about recording
itself (the chain, rollbacks, concurrency) call `audit_record` directly.
"""

import uuid

import factory
from django.db import transaction
from django.utils import timezone

from audit import services
from audit.models import AuditEvent, Checkpoint
from config import context
from config.db.commit import only_test_blocks_open


class AuditEventFactory(factory.django.DjangoModelFactory):
    """An event recorded through `audit_record` and committed (as far as the test's own
    transaction allows). `ip`, `user_agent` and `request_id` are the request context's;
    `obj=` names the object as `audit_record` does."""

    class Meta:
        model = AuditEvent

    action = "test.thing"
    actor = None
    object_type = ""
    object_id = ""
    object_repr = ""
    changes = factory.LazyFunction(dict)
    metadata = factory.LazyFunction(dict)
    ip = None
    user_agent = ""
    request_id = factory.LazyFunction(lambda: uuid.uuid4().hex)

    @classmethod
    def _create(cls, model_class, *args, ip, user_agent, request_id, **kwargs):
        connection = transaction.get_connection()
        if not connection.get_autocommit() and not only_test_blocks_open(connection):
            # Inside a transaction of the test's own the event waits for its commit: there is
            # no row to return yet.
            raise RuntimeError("AuditEventFactory inside a transaction: call audit_record")
        ctx = context.RequestContext(ip=ip, user_agent=user_agent, request_id=request_id)
        with context.bind(ctx):
            services.audit_record(**kwargs)
        return model_class.objects.order_by("-id").first()


class CheckpointFactory(factory.django.DjangoModelFactory):
    """A checkpoint row written straight into the table and signed by no key we hold: what a
    forger can insert. Real checkpoints come from `services.checkpoint_create`."""

    class Meta:
        model = Checkpoint

    sequence = factory.Sequence(lambda n: n + 1)
    hash = "0" * 64
    created_at = factory.LazyFunction(timezone.now)
    key_id = "f" * 16
    signature = "0" * 64
