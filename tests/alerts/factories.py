"""factory-boy factories for the alerting rows (`.build()` where no database is needed).

Alerts, silences and acknowledgements that a test is about go through the services; these
make the configuration around them (targets, policies, steps, routes) and rows to read.
"""

from datetime import timedelta

import factory
from django.utils import timezone

from alerts.models import (
    Alert,
    Channel,
    Delivery,
    EscalationPolicy,
    EscalationStep,
    Route,
    Severity,
    Silence,
    Target,
)
from tests.factories import UserFactory


class TargetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Target

    name = factory.Sequence(lambda n: f"target-{n}")
    channel = Channel.EMAIL
    address = factory.LazyAttribute(lambda t: f"{t.name}@example.com")


class EscalationPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EscalationPolicy

    name = factory.Sequence(lambda n: f"policy-{n}")


class EscalationStepFactory(factory.django.DjangoModelFactory):
    """A step; `targets=[...]` notifies those targets."""

    class Meta:
        model = EscalationStep
        skip_postgeneration_save = True

    policy = factory.SubFactory(EscalationPolicyFactory)
    position = factory.Sequence(lambda n: n)
    delay_minutes = 0

    @factory.post_generation
    def targets(self, create, extracted, **kwargs):
        if create and extracted:
            self.targets.add(*extracted)


class RouteFactory(factory.django.DjangoModelFactory):
    """A route; the defaults match every alert (a catch-all)."""

    class Meta:
        model = Route

    name = factory.Sequence(lambda n: f"route-{n}")
    policy = factory.SubFactory(EscalationPolicyFactory)


class AlertFactory(factory.django.DjangoModelFactory):
    """An alert row as raise_alert stores it (use raise_alert when the test is about raising)."""

    class Meta:
        model = Alert

    source = "test"
    key = factory.Sequence(lambda n: f"key-{n}")
    severity = Severity.WARNING
    title = factory.LazyAttribute(lambda a: f"{a.source}/{a.key} is wrong")
    last_seen = factory.LazyFunction(timezone.now)


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    alert = factory.SubFactory(AlertFactory)
    target = factory.SubFactory(TargetFactory)
    channel = factory.SelfAttribute("target.channel")


class SilenceFactory(factory.django.DjangoModelFactory):
    """A silence row (silence_create is the way a silence is made; this is for reads)."""

    class Meta:
        model = Silence

    reason = "maintenance"
    starts_at = factory.LazyFunction(timezone.now)
    ends_at = factory.LazyAttribute(lambda s: s.starts_at + timedelta(hours=1))
    created_by = factory.SubFactory(UserFactory)


def route_to(*targets: Target, **route: object) -> EscalationPolicy:
    """A policy whose first step notifies `targets`, routed from every alert by default."""
    step = EscalationStepFactory(position=0, targets=list(targets))
    RouteFactory(policy=step.policy, **route)
    return step.policy
