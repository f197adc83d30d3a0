import calendar
from datetime import date

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from finance import services
from finance.models import Account, AccountType, FiscalPeriod

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
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


class AccountFactory(factory.django.DjangoModelFactory):
    """Accounts are made through the service so that their balance row exists."""

    class Meta:
        model = Account

    code = factory.Sequence(lambda n: f"{1000 + n}")
    name = factory.LazyAttribute(lambda a: f"Account {a.code}")
    type = AccountType.ASSET
    currency = "USD"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.account_create(**kwargs)


def make_year(year: int) -> list[FiscalPeriod]:
    periods = []
    for month in range(1, 13):
        existing = FiscalPeriod.objects.filter(name=f"{year}-{month:02d}").first()
        periods.append(
            existing
            or services.period_create(
                name=f"{year}-{month:02d}",
                start_date=date(year, month, 1),
                end_date=date(year, month, calendar.monthrange(year, month)[1]),
                fiscal_year=year,
            )
        )
    return periods
