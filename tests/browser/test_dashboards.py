"""The operations console in a real headless Chromium: every role logs in through the form,
opens the Overview and every dashboard its tab bar offers, and each page is screenshotted,
checked for the basics of accessible markup, and must print no console error and break no
Content Security Policy rule. Then the people act through the pages as they would: the operator
acknowledges an alert from the Overview, runs the checks and starts a restore drill; the
approver approves an entry waiting for approval; the auditor exports the audit trail and
downloads it. Each result is read back from the database.

Screenshots go to var/browser-artifacts/dashboards/ (ignored by git). With
DASHBOARD_SCREENSHOTS=<dir> the admin's screenshots are also written there (`make screenshots`
writes docs/img/dashboards/ from a year of demo data: DEMO_DAYS, default 30 here).
"""

import os
import re
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.urls import reverse

from alerts.services import raise_alert
from audit.models import AuditEvent
from config.roles import sync_roles
from finance.models import JournalEntry
from integrity.models import CheckRun
from tests.browser.chromium import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    ROLES,
    csp_reports,
    log_in,
    skip_reason,
    sync_playwright,
    watch,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
if reason := skip_reason():
    pytestmark.append(pytest.mark.skip(reason=reason))

SHOTS = ARTIFACTS / "dashboards"
DOCS_SHOTS = os.environ.get("DASHBOARD_SCREENSHOTS", "")
DEMO_DAYS = int(os.environ.get("DEMO_DAYS", "30"))
VIEWPORT = {"width": 1366, "height": 900}  # a laptop screen

# Markup checks run in the page: every form control has a label, every image a text
# alternative, every button a name; no element carries an inline style (the CSP would refuse
# it anyway, and the console check would say so).
A11Y = """() => {
  const problems = [];
  const controls = '#content input:not([type=hidden]):not([type=submit]):not([type=button]),'
    + ' #content select, #content textarea';
  for (const el of document.querySelectorAll(controls)) {
    const named = (el.labels && el.labels.length) || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby') || el.title;
    if (!named) problems.push('unlabelled ' + el.tagName.toLowerCase() + ' ' + (el.name || el.id));
  }
  for (const img of document.querySelectorAll('#content img')) {
    if (!img.hasAttribute('alt')) problems.push('image without alt: ' + img.src.slice(0, 60));
  }
  for (const b of document.querySelectorAll('#content button, #content input[type=submit]')) {
    const name = b.textContent.trim() || b.value || b.getAttribute('aria-label');
    if (!name) problems.push('unnamed button');
  }
  if (!document.querySelector('h1')) problems.push('no h1');
  return problems;
}"""


@pytest.fixture
def console_site(live_server, settings, monkeypatch):
    """The live server with the demo company and its history, and a firing alert."""
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    sync_roles(apps, None)  # an earlier transactional test's flush removed the roles
    call_command("seed_demo", days=DEMO_DAYS, stdout=StringIO())
    return live_server


def _shoot(page, role: str, key: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{role}-{key}.png"), full_page=True)
    if DOCS_SHOTS and role == "admin":
        Path(DOCS_SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(DOCS_SHOTS) / f"{key}.png"), full_page=True)


def _tabs(page) -> list[tuple[str, str]]:
    return page.eval_on_selector_all(
        "nav.lg-dash-nav a", "els => els.map(e => [e.textContent.trim(), e.href])"
    )


@pytest.mark.parametrize("role", ROLES)
def test_each_role_opens_every_dashboard_it_may_see(console_site, make_user, role):
    user = make_user(role, username=f"console-{role}")
    base = console_site.url
    problems: list[str] = []
    seen: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            watch(page, problems)
            log_in(page, base, user.username)
            assert page.locator("section.lg-tiles article.lg-tile").count() > 0
            _shoot(page, role, "overview")
            problems += [f"overview: {p}" for p in page.evaluate(A11Y)]
            tabs = _tabs(page)
            assert tabs[0][0] == "Overview"
            for title, href in tabs[1:]:
                response = page.goto(href)
                assert response is not None and response.status == 200, (title, href)
                key = href.rstrip("/").rsplit("/", 1)[-1]
                seen.append(key)
                _shoot(page, role, key)
                problems += [f"{key}: {p}" for p in page.evaluate(A11Y)]
                # Keyboard: the first Tab from the top reaches a link (skip link or the menu).
                page.keyboard.press("Tab")
                assert page.evaluate("document.activeElement.tagName") in ("A", "BUTTON")
                # Every chart image is drawn (the data: URL decoded into a picture).
                for img in page.locator("figure.lg-chart img").all():
                    assert img.evaluate("i => i.complete && i.naturalWidth > 0"), (key, title)
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    assert not csp_reports()
    expected = {
        "finance_clerk": {"financial"},
        "finance_approver": {"financial", "integrity"},
        "auditor": {"financial", "integrity", "audit", "performance", "backups"},
        "operator": {"financial", "integrity", "audit", "alerts", "performance", "backups"},
        "admin": {"financial", "integrity", "audit", "alerts", "performance", "backups"},
    }[role]
    assert expected <= set(seen), (role, seen)


def _page(browser, base: str, username: str, problems: list[str]):
    page = browser.new_context(viewport=VIEWPORT, accept_downloads=True).new_page()
    watch(page, problems)
    log_in(page, base, username)
    return page


def test_people_act_through_the_dashboards(console_site, make_user):
    base = console_site.url
    operator = make_user("operator", username="console-operator")
    approver = make_user("finance_approver", username="console-approver")
    auditor = make_user("auditor", username="console-auditor")
    alert = raise_alert(
        source="browser", key="act", severity="critical", title="Disk nearly full", details={}
    )
    pending = JournalEntry.objects.filter(status="pending_approval").order_by("pk").first()
    assert pending is not None, "the demo leaves an entry waiting for approval"
    runs_before = CheckRun.objects.count()
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # The operator acknowledges the alert from its Overview tile.
            page = _page(browser, base, operator.username, problems)
            tile = page.locator("article.lg-tile", has_text="Disk nearly full")
            tile.get_by_role("button", name="Acknowledge Disk nearly full").click()
            page.wait_for_load_state()
            assert page.locator("ul.messagelist .success").count() == 1, page.content()
            alert.refresh_from_db()
            assert alert.acknowledged_at is not None and alert.acknowledged_by == operator

            # ... runs the checks now from the Integrity page ...
            page.goto(f"{base}{reverse('admin:dashboard_integrity')}")
            page.get_by_role("button", name=re.compile("Run", re.I)).first.click()
            page.wait_for_load_state()
            assert CheckRun.objects.count() > runs_before

            # ... and starts a restore drill from the Backups page (the worker runs it).
            page.goto(f"{base}{reverse('admin:dashboard_backups')}")
            page.get_by_role("button", name=re.compile("drill", re.I)).first.click()
            page.wait_for_load_state()
            assert page.locator("ul.messagelist .success").count() == 1, page.content()
            assert AuditEvent.objects.filter(action__startswith="backup.drill").exists()

            # The approver approves the entry waiting for approval from the Financial page.
            page = _page(browser, base, approver.username, problems)
            page.goto(f"{base}{reverse('admin:dashboard_financial')}")
            row = page.locator("tr", has_text=pending.description)
            row.get_by_role("button", name=re.compile("Approve")).click()
            page.wait_for_load_state()
            pending.refresh_from_db()
            assert pending.status == "posted", pending.status
            assert pending.approved_by == approver

            # The auditor exports the audit trail and downloads it from the Audit page.
            page = _page(browser, base, auditor.username, problems)
            page.goto(f"{base}{reverse('admin:dashboard_audit')}")
            with page.expect_download() as download:
                page.get_by_role("button", name=re.compile("Export", re.I)).first.click()
            path = download.value.path()
            assert path and Path(path).stat().st_size > 0
            assert AuditEvent.objects.filter(action="audit.exported", actor=auditor).exists()
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    assert not csp_reports()
