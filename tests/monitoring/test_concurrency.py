import threading

import pytest
from django.db import connections

from monitoring.models import ErrorEvent, ErrorGroup
from monitoring.services import error_record
from tests.monitoring.helpers import caught, site_a

THREADS = 8


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_occurrences_make_one_group_with_the_right_count(alerts):
    barrier = threading.Barrier(THREADS)
    results: list = []

    def work(n: int) -> None:
        try:
            exc = caught(site_a, f"concurrent {n}")
            barrier.wait()
            results.append(error_record(exc=exc, source="operation", operation_name="race"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(r is not None for r in results) and len(results) == THREADS
    group = ErrorGroup.objects.get()
    assert group.count == THREADS
    assert ErrorEvent.objects.filter(group=group).count() == THREADS
    assert [a["title"].split(":")[0] for a in alerts.raised] == ["New error"]
