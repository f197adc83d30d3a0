"""What the browser tests share: Debian's Chromium under Playwright, the login through the
admin's form, and the two ways a page can complain (its console, and the CSP report endpoint's
rows in the error log)."""

import os
import shutil
from pathlib import Path

from django.urls import reverse

from monitoring.models import ErrorGroup
from tests.factories import PASSWORD

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright
except ImportError:  # the test extra not installed
    sync_playwright = None
    PlaywrightTimeout = TimeoutError

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "browser-artifacts"
ROLES = ["finance_clerk", "finance_approver", "auditor", "operator", "admin"]


def skip_reason() -> str | None:
    if sync_playwright is None:
        return "playwright is not installed (pip install -e '.[test]')"
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (make test installs Debian's chromium package)"
    return None


def csp_reports() -> list[str]:
    return list(
        ErrorGroup.objects.filter(exception_type__startswith="CSPViolation").values_list(
            "message", flat=True
        )
    )


def console(message, page, problems: list[str]) -> None:
    """Errors, and CSP refusals whatever their level (report-only ones are warnings)."""
    if message.type == "error" or "Content Security Policy" in message.text:
        problems.append(f"{page.url}: console {message.type}: {message.text}")


def watch(page, problems: list[str]) -> None:
    page.on("console", lambda m: console(m, page, problems))
    page.on("pageerror", lambda e: problems.append(f"{page.url}: page error: {e}"))


def log_in(page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}{reverse('admin:login')}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}{reverse('admin:index')}")
