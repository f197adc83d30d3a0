"""Test data shared by every app's tests: users. Each app's own live in tests/<app>/factories.py
(the ledger's AccountFactory and make_year stay importable from here)."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from tests.finance.factories import AccountFactory, make_year

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    """A staff user who logs in with PASSWORD; `roles=[...]` puts them in those roles' groups,
    `permissions=["app_label.codename", ...]` grants those permissions directly."""

    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for role in extracted or []:
            self.groups.add(Group.objects.get(name=role))

    @factory.post_generation
    def permissions(self, create, extracted, **kwargs):
        for name in extracted or []:
            app_label, codename = name.split(".")
            self.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


__all__ = ["PASSWORD", "AccountFactory", "UserFactory", "make_year"]
