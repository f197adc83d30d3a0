import factory
from django.utils import timezone

from backups.models import Backup, BackupStatus, RestoreDrill


class BackupFactory(factory.django.DjangoModelFactory):
    """A backup row as the services leave a stored one (no object behind it: use the services
    when the test needs one)."""

    class Meta:
        model = Backup

    engine = Backup.Engine.SQLITE
    status = BackupStatus.VERIFIED
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyAttribute(lambda b: b.started_at)
    snapshot_at = factory.LazyAttribute(lambda b: b.started_at)
    location = factory.Sequence(lambda n: f"2026/12/test-{n}.lgb")
    sha256 = "0" * 64
    size_bytes = 1


class RestoreDrillFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RestoreDrill

    backup = factory.SubFactory(BackupFactory)
    status = RestoreDrill.Status.PASSED
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyAttribute(lambda d: d.started_at)
    restore_seconds = 1.0
