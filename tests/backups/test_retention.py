"""Retention keeps what it promises: the newest backup of each of the last N days, M weeks and
K months, never the newest verified one, and never an unverified one for its period."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from backups.models import BackupStatus
from backups.services import retention_plan
from tests.backups.factories import BackupFactory

NOON = timezone.make_aware(datetime(2026, 11, 30, 12, 0))  # a Monday


def daily_backups(days: int, *, per_day: int = 1):
    return [
        BackupFactory.build(pk=day * 10 + n, started_at=NOON - timedelta(days=day, hours=n))
        for day in range(days)
        for n in range(per_day)
    ]


def test_keeps_the_newest_of_each_day_week_and_month_and_removes_the_rest():
    backups = daily_backups(100, per_day=2)
    plan = retention_plan(backups, daily=7, weekly=4, monthly=3)
    kept = {pk for pk in plan.kept}
    newest_of_day = [day * 10 for day in range(100)]
    assert set(newest_of_day[:7]) <= kept  # the last 7 days, the newest of each
    assert not {day * 10 + 1 for day in range(100)} & kept  # never the older one of a day
    assert "daily" in plan.kept[0]
    weekly = [pk for pk, why in plan.kept.items() if "weekly" in why]
    monthly = [pk for pk, why in plan.kept.items() if "monthly" in why]
    assert len(weekly) == 4 and len(monthly) == 3
    assert sorted(plan.removed + list(plan.kept)) == sorted(b.pk for b in backups)


def test_never_removes_the_newest_verified_backup_even_when_older_than_every_rule():
    backups = daily_backups(3)
    for b in backups:
        b.status = BackupStatus.COMPLETED
    old_verified = BackupFactory.build(pk=999, started_at=NOON - timedelta(days=400))
    plan = retention_plan([*backups, old_verified], daily=1, weekly=0, monthly=0)
    assert plan.kept[999] == ["newest verified"]
    assert 999 not in plan.removed


def test_an_unverified_backup_never_stands_for_its_day():
    good = BackupFactory.build(pk=1, started_at=NOON - timedelta(hours=2))
    bad = BackupFactory.build(pk=2, started_at=NOON, status=BackupStatus.UNVERIFIED)
    plan = retention_plan([good, bad], daily=1, weekly=0, monthly=0)
    assert "daily" in plan.kept[1]  # the verified one stands for the day
    assert plan.kept[2] == ["newer than the newest verified"]


def test_when_verification_keeps_failing_nothing_newer_than_the_last_verified_goes():
    backups = daily_backups(10)
    for b in backups:
        b.status = BackupStatus.UNVERIFIED  # a rotated key, write-only credentials...
    plan = retention_plan(backups, daily=1, weekly=1, monthly=1)
    assert plan.removed == []


@pytest.mark.parametrize("daily,weekly,monthly", [(0, 0, 0), (1, 1, 1), (30, 8, 24)])
def test_every_backup_is_either_kept_or_removed(daily, weekly, monthly):
    backups = daily_backups(40)
    plan = retention_plan(backups, daily=daily, weekly=weekly, monthly=monthly)
    assert not set(plan.removed) & set(plan.kept)
    assert len(plan.removed) + len(plan.kept) == len(backups)
