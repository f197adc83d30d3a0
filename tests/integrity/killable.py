"""Run by test_killed_worker in a child process: an operation that stops half-way."""

import os
import sys
import time

import django

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from finance import services  # noqa: E402
from integrity.transactions import run_operation  # noqa: E402


def first_half(ctx):
    services.account_create(code="8001", name="first half", type="asset", currency="USD")


def second_half(ctx):
    services.account_create(code="8002", name="second half", type="asset", currency="USD")
    print("HALFWAY", flush=True)
    if ctx.payload["pause"]:
        time.sleep(60)  # killed here, inside the transaction


if __name__ == "__main__":
    run_operation("test.killable", [first_half, second_half], {"pause": sys.argv[1] == "pause"})
    print("DONE", flush=True)
