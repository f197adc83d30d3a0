"""The browser tests drive pages, which are the same HTML on both engines; `make test` runs them
on SQLite only, to keep the whole run within its time (the services behind every button run on
both engines in the Django test client tests). BROWSER_ALL_ENGINES=1 runs them on PostgreSQL too."""

import os

import pytest


def pytest_collection_modifyitems(config, items):
    on_postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
    if not on_postgres or os.environ.get("BROWSER_ALL_ENGINES") == "1":
        return
    skip = pytest.mark.skip(reason="browser tests run on SQLite (BROWSER_ALL_ENGINES=1 for both)")
    for item in items:
        if "tests/browser/" in item.nodeid:
            item.add_marker(skip)
