"""Benchmark set-up: Django on DATABASE_URL, in a throwaway test database.

Importing this module sets Django up (the project root on sys.path, the settings module, a
throwaway SECRET_KEY unless one is set, `django.setup()`), so a benchmark imports it first and
the project's modules after it, below an `# isort: split`. `run_benchmark` then creates and
migrates a scratch database, runs the benchmark in it and drops it.
"""

import json
import os
import sys
from pathlib import Path

import django
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent

sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-secret")
django.setup()


def setup(require_postgres: bool = True):
    """Create and migrate a scratch database; return a teardown function."""
    url = os.environ.get("DATABASE_URL", "")
    if require_postgres and not url.startswith("postgres"):
        sys.exit(
            "Set DATABASE_URL to a PostgreSQL URL (or run `make bench`, which starts a "
            "throwaway server)."
        )
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)

    def teardown():
        connection.creation.destroy_test_db(old_name, verbosity=0)

    return teardown


def run_benchmark(run, default_n: int, *, require_postgres: bool = True) -> None:
    """`python benchmarks/X.py [N]`: set up a scratch database, run(N), tear it down."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else default_n
    teardown = setup(require_postgres=require_postgres)
    try:
        run(n)
    finally:
        teardown()


def figure(
    name: str,
    value: float,
    unit: str,
    *,
    baseline: float | None = None,
    baseline_name: str = "",
    target: str = "",
) -> None:
    """Record one figure for `make bench`'s table (the script prints its own report): a JSON
    line appended to the file named by BENCH_FIGURES, when that is set. `ratio` is value /
    baseline (both in `unit`); `target` states the issue's goal in the ratio's or the value's
    terms (">= 0.6x", ">= 300000/s"), empty when there is none."""
    ratio = value / baseline if baseline else None
    row = {
        "benchmark": Path(sys.argv[0]).stem,
        "figure": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_name": baseline_name,
        "ratio": ratio,
        "target": target,
    }
    path = os.environ.get("BENCH_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")
