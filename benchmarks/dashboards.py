"""Dashboard render times with a year of demo data: each page of the operations console and
the Overview, against Django's own change list of journal entries in the same process.

    DATABASE_URL=... python benchmarks/dashboards.py [DAYS]      (default 365)

A scratch database is migrated and seeded with `seed_demo --days DAYS` (a year of postings,
check runs, alerts, metrics and backups); then, logged in as the demo's superuser (who sees
every section and button), each page is requested through Django's test client, which runs
the whole request path (middleware, session, the view, the templates, the charts): one warm-up
request, then ROUNDS rounds over all the pages in turn. The figure is each page's median time
and its queries; the baseline is the stock admin change list of journal entries (100 rows,
Django's own page) in the same rounds. The issue's target: every page under 300 ms.
Runs on either engine (`make bench` gives it PostgreSQL; with DATABASE_URL unset here it uses
the SQLite default).
"""

import statistics
import sys
import time
from io import StringIO

from _django import figure, setup  # sets Django up: before any of the project's imports

# isort: split
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from config import dashboards

ROUNDS = 15
TARGET_MS = 300.0


def pages() -> list[tuple[str, str]]:
    return [
        ("overview", reverse("admin:index")),
        *((d.key, d.url()) for d in dashboards.registered()),
    ]


def run(days: int) -> None:
    # The client logs in without a second factor, and pages name static files without
    # collectstatic's manifest (a dictionary lookup either way).
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(ADMIN_REQUIRE_2FA=False, STORAGES=storages):
        measure(days)


def measure(days: int) -> None:
    started = time.perf_counter()
    call_command("seed_demo", days=days, stdout=StringIO())
    seeded = time.perf_counter() - started
    client = Client(HTTP_HOST="127.0.0.1")  # an allowed host with DEBUG off
    client.force_login(get_user_model().objects.get(username="admin"))
    baseline_url = reverse("admin:finance_journalentry_changelist")
    targets = [*pages(), ("baseline: stock change list", baseline_url)]
    queries: dict[str, int] = {}
    for name, url in targets:  # warm-up, and the query count of each page
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        queries[name] = len(captured)
    timings: dict[str, list[float]] = {name: [] for name, _ in targets}
    for _ in range(ROUNDS):
        for name, url in targets:
            t0 = time.perf_counter()
            response = client.get(url)
            timings[name].append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, name
    base = statistics.median(timings["baseline: stock change list"])
    print(
        f"{connection.vendor}, seed_demo --days {days} in {seeded:.0f} s; "
        f"median of {ROUNDS} requests per page (ms), as the demo's superuser"
    )
    print(f"{'page':32} {'median':>8} {'max':>8} {'queries':>8} {'x baseline':>11}")
    for name, values in timings.items():
        median = statistics.median(values)
        print(
            f"{name:32} {median:8.1f} {max(values):8.1f} {queries[name]:8d} {median / base:10.2f}x"
        )
        if not name.startswith("baseline"):
            figure(
                f"{name} page, {days} days of data",
                median,
                "ms",
                baseline=base,
                baseline_name="stock admin change list",
                target=f"< {TARGET_MS:.0f} ms",
            )
    slow = [n for n, v in timings.items() if statistics.median(v) >= TARGET_MS]
    print("every page under 300 ms" if not slow else f"over 300 ms: {', '.join(slow)}")


if __name__ == "__main__":
    days = int(sys.argv[1]) if len(sys.argv) > 1 else 365
    teardown = setup(require_postgres=False)
    try:
        run(days)
    finally:
        teardown()
