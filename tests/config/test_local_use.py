"""Commands run by hand in a checkout where `make run` ran need no exported variables; a
production start (DEBUG off, no SECRET_KEY) still refuses, and so do unmarked checkouts.

Each test works in a copy of the project, so that the real checkout's var/ plays no part.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRINT_DEBUG = ["shell", "-c", "from django.conf import settings; print(settings.DEBUG)"]
UNSET = ("DEBUG", "SECRET_KEY", "AUDIT_SIGNING_KEY", "DATABASE_URL", "STATIC_MANIFEST")


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A copy of the project, without var/, as a fresh clone has it."""
    copy = tmp_path / "checkout"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "var", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis"
        ),
    )
    return copy


def mark_for_local_use(checkout: Path) -> None:
    subprocess.run(["make", "--no-print-directory", "local-use"], cwd=checkout, check=True)


def manage(checkout: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py in the checkout, with nothing exported but what the test passes."""
    base = {k: v for k, v in os.environ.items() if k not in UNSET}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=checkout,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_commands_by_hand_in_a_marked_checkout_need_nothing_exported(checkout):
    mark_for_local_use(checkout)
    result = manage(checkout, *PRINT_DEBUG)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True"
    # The generated local key, as with DEBUG=1.
    assert len((checkout / "var" / "secret_key").read_text().strip()) > 50
    assert manage(checkout, "check").returncode == 0


def test_debug_off_in_a_marked_checkout_still_needs_a_secret_key(checkout):
    mark_for_local_use(checkout)
    result = manage(checkout, "check", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert not (checkout / "var" / "secret_key").exists()


def test_tests_keep_debug_off_in_a_marked_checkout(checkout):
    # tests/envdefaults.py gives the tests DEBUG=0, which wins over the mark.
    mark_for_local_use(checkout)
    env = {"DEBUG": os.environ["DEBUG"], "SECRET_KEY": os.environ["SECRET_KEY"]}
    result = manage(checkout, *PRINT_DEBUG, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_an_unmarked_checkout_refuses_without_a_secret_key(checkout):
    result = manage(checkout, "check")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_a_mark_copied_from_another_folder_is_ignored(checkout, tmp_path):
    mark_for_local_use(checkout)
    moved = checkout.rename(tmp_path / "image")  # say, var/ copied into an image
    result = manage(moved, "check")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
