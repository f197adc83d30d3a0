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


def make(checkout: Path, *targets: str) -> None:
    subprocess.run(
        ["make", "--no-print-directory", *targets, f"PYTHON={sys.executable}"],
        cwd=checkout,
        check=True,
        capture_output=True,
    )


def mark_for_local_use(checkout: Path) -> None:
    make(checkout, "local-use")


def set_up_as_make_run(checkout: Path) -> None:
    """What `make run` does before it migrates: mark the checkout, generate the local keys."""
    make(checkout, "local-use", "local-keys")


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
    set_up_as_make_run(checkout)
    result = manage(checkout, *PRINT_DEBUG)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True"
    # The generated local key, as with DEBUG=1.
    key = (checkout / "var" / "secret_key").read_text().strip()
    assert len(key) > 50
    print_key = ["shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)"]
    assert manage(checkout, *print_key).stdout.strip().splitlines()[-1] == key
    assert manage(checkout, "check").returncode == 0


def test_settings_generate_no_key_they_only_read_one(checkout):
    mark_for_local_use(checkout)
    result = manage(checkout, "check")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "make local-keys" in result.stderr
    assert sorted(p.name for p in (checkout / "var").iterdir()) == ["local-use"]


def test_local_keys_are_made_once_for_the_owner_only(checkout):
    make(checkout, "local-keys")
    keys = {p.name: p.read_text() for p in (checkout / "var").iterdir()}
    assert sorted(keys) == ["alert_webhook_secret", "audit_signing_key", "secret_key"]
    assert len(set(keys.values())) == 3
    assert all((checkout / "var" / name).stat().st_mode & 0o777 == 0o600 for name in keys)
    make(checkout, "local-keys")
    assert {p.name: p.read_text() for p in (checkout / "var").iterdir()} == keys


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
