"""Call sites that raise, for grouping tests (in-app: this file is under the project root)."""

import pytest


def fail(message: str = "failed") -> None:
    raise ValueError(message)


def site_a(message: str = "failed") -> None:
    fail(message)


def site_b(message: str = "failed") -> None:
    fail(message)


def caught(func, *args) -> BaseException:
    """What `func(*args)` raised, with its traceback."""
    with pytest.raises(Exception) as info:
        func(*args)
    return info.value
