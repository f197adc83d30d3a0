"""A process killed in the middle of an operation leaves all of it or none of it."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from finance.models import Account
from tests.e2e.test_scheduler import test_database_url

ROOT = Path(__file__).resolve().parents[2]


def start(mode: str) -> subprocess.Popen:
    env = os.environ | {"DATABASE_URL": test_database_url()}
    return subprocess.Popen(
        [sys.executable, "tests/integrity/killable.py", mode],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.django_db(transaction=True)
def test_sigkill_mid_operation_leaves_nothing_then_a_rerun_leaves_everything():
    proc = start("pause")
    line = proc.stdout.readline()
    assert line.strip() == "HALFWAY", line + proc.stdout.read()
    os.kill(proc.pid, signal.SIGKILL)  # both accounts written, nothing committed
    proc.wait(timeout=30)
    assert not Account.objects.filter(code__in=["8001", "8002"]).exists()

    proc = start("run")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert sorted(
        Account.objects.filter(code__in=["8001", "8002"]).values_list("code", flat=True)
    ) == ["8001", "8002"]
