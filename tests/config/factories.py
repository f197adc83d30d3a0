"""Rows of the plumbing (groups, API tokens), for arranging a test's state. Users and their
roles come from tests/factories.py (UserFactory)."""

import factory
from django.contrib.auth.models import Group

from config.models import ApiToken
from config.tokens import api_token_create
from tests.factories import UserFactory


class GroupFactory(factory.django.DjangoModelFactory):
    """A group that is not one of the roles; `permissions=` (permission rows) grants them."""

    class Meta:
        model = Group
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"group-{n}")

    @factory.post_generation
    def permissions(self, create, extracted, **kwargs):
        if create and extracted is not None:
            self.permissions.set(extracted)


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """A live token issued through `api_token_create` (with its audit event). The raw token is
    shown once and not kept: a test that authenticates with it calls `api_token_create`."""

    class Meta:
        model = ApiToken

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"token-{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        token, _raw = api_token_create(**kwargs)
        return token
