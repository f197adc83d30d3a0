"""A real headless Chromium (Debian's, driven by Playwright) logs in through the admin's login
form as each role, opens every admin page that role can reach and the API docs, and finds no
Content Security Policy violation and no console error.

Chromium prints every CSP violation to the console ("Refused to apply inline style ..."), and
also posts it to the report endpoint: the test fails on either. The control at the end proves
the listener is not deaf: a style attribute set by hand is refused, printed and reported.

The walk: from the admin index, every link inside the page's content that stays in the admin,
breadth first, each URL shape once (ids stand for one object of a model), never a link that
changes something on GET or downloads (logout, delete, download), nor filter and sort links
(query strings). A link that answers 403 (a page the role may not open) is passed over, with
what its error page prints; any other answer of 400 or more fails. Custom admin views
(get_urls) are reached by the links their pages carry.
Screenshots of failing pages go to var/browser-artifacts/ (ignored by git).
"""

import base64
import re
from collections import deque
from io import StringIO
from urllib.parse import urldefrag, urlsplit

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_otp.oath import totp

from alerts.services import raise_alert
from config.roles import sync_roles
from monitoring.services import error_record
from tests.browser.chromium import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    ROLES,
    PlaywrightTimeout,
    skip_reason,
    sync_playwright,
)
from tests.browser.chromium import console as _console
from tests.browser.chromium import csp_reports as _csp_reports
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Never followed: they change something on GET, end the session, or download a file.
SKIP = re.compile(r"/(logout|delete|download)/|/password/$")
MAX_PAGES = 250
# The one refusal the policy makes on purpose: ReDoc's sidebar shows Redocly's logo from their
# CDN; no request leaves the site, and ReDoc hides the image when it does not load.
KNOWN = re.compile(r"/api/redoc/: .*'https://cdn\.redoc\.ly/redoc/logo-mini\.svg' violates")

if reason := skip_reason():
    pytestmark.append(pytest.mark.skip(reason=reason))


@pytest.fixture
def site(live_server, settings, make_user, monkeypatch):
    """The live server with a demo company, check runs, an error and an alert to open."""
    # Plain HTTP on 127.0.0.1: cookies without the Secure flag, as `make serve` has them.
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    # Playwright's sync API runs an event loop in this thread; the ORM calls between its
    # calls are still synchronous code (Django's async guard cannot tell).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    sync_roles(apps, None)  # an earlier transactional test's flush removed the roles
    call_command("seed_demo", days=30, stdout=StringIO())
    with pytest.raises(CommandError):  # failing checks (no backup yet) make findings to show
        call_command("run_checks", stdout=StringIO())
    try:
        raise ValueError("a demo error for the error log's pages")
    except ValueError as exc:
        error_record(exc=exc, source="request", route="/demo/")
    raise_alert(source="demo", key="browser", severity="warning", title="A demo alert", details={})
    return live_server


def _shape(path: str) -> str:
    return re.sub(r"/\d+/", "/<id>/", path)


def _walk(page, base: str, start: str, refused: set[str]) -> list[str]:
    """Open every admin page reachable from `start`; returns the paths opened."""
    admin_root = urlsplit(start).path
    queue, seen, opened = deque([start]), {_shape(admin_root)}, []
    while queue and len(opened) < MAX_PAGES:
        url = queue.popleft()
        response = page.goto(url)
        assert response is not None, url
        if response.status == 403:
            refused.add(page.url)
            continue  # a link to what the role may not open (a user's own page): not its page
        assert response.status < 400, f"{url}: {response.status}"
        opened.append(urlsplit(page.url).path)
        hrefs = page.eval_on_selector_all("#content a[href]", "els => els.map(e => e.href)")
        for href in hrefs:
            href = urldefrag(href).url
            parts = urlsplit(href)
            if not href.startswith(base) or parts.query or SKIP.search(parts.path):
                continue
            if not parts.path.startswith(admin_root) or _shape(parts.path) in seen:
                continue
            seen.add(_shape(parts.path))
            queue.append(href)
    return opened


@pytest.mark.parametrize("role", ROLES)
def test_every_admin_page_and_the_api_docs_without_csp_violations(site, make_user, role):
    user = make_user(role, username=f"browser-{role}")
    base = site.url
    problems: list[str] = []
    refused: set[str] = set()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context().new_page()
            page.on("console", lambda m: _console(m, page, problems))
            page.on("pageerror", lambda e: problems.append(f"{page.url}: page error: {e}"))
            login = f"{base}{reverse('admin:login')}"
            page.goto(login)
            page.fill("#id_username", user.username)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{base}{reverse('admin:index')}")
            opened = _walk(page, base, f"{base}{reverse('admin:index')}", refused)
            # Pages linked from the user tools (outside #content): the session list, the
            # recovery codes, the password form.
            for name in ("admin:my_sessions", "admin:otp_recovery_codes", "admin:password_change"):
                response = page.goto(f"{base}{reverse(name)}")
                assert response is not None and response.status == 200, name
                opened.append(reverse(name))
            for name in ("api-docs", "api-redoc"):
                page.goto(f"{base}{reverse(name)}")
                # Both render the schema's title once they have fetched and read it.
                try:
                    page.get_by_text("Ledgerguard API").first.wait_for(timeout=20_000)
                except PlaywrightTimeout:
                    problems.append(f"{page.url}: the schema's title never showed")
                opened.append(reverse(name))
            if problems:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"{role}-last-page.png"), full_page=True)
        finally:
            browser.close()
    problems = [p for p in problems if p.split(": ")[0] not in refused and not KNOWN.search(p)]
    assert len(opened) > 5, opened
    assert not problems, "\n".join(problems)
    assert not _csp_reports()


def test_a_violation_is_printed_and_reported(site, settings):
    """The control: an inline style set on a page is refused, printed and reported, so the
    silence of the walk above means something. Without `report-to` here: Chromium then posts
    at once to report-uri, where the Reporting API would batch reports for up to a minute."""
    directives = dict(settings.CONTENT_SECURITY_POLICY["DIRECTIVES"])
    del directives["report-to"]
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": directives}
    messages: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context().new_page()
            page.on("console", lambda m: messages.append(m.text))
            page.goto(f"{site.url}{reverse('admin:login')}")
            page.evaluate("document.body.setAttribute('style', 'color: red')")
            page.wait_for_timeout(500)
            # report-uri reports go out at once; give the server a moment to store them.
            for _ in range(50):
                if _csp_reports():
                    break
                page.wait_for_timeout(100)
        finally:
            browser.close()
    assert any("Content Security Policy" in m for m in messages), messages
    reports = _csp_reports()
    assert reports and "style-src" in reports[0], reports


def _totp_now(base32_key: str) -> str:
    key = base64.b32decode(base32_key + "=" * (-len(base32_key) % 8))
    return f"{totp(key):06d}"


def test_new_staff_enrol_then_sign_in_with_a_recovery_code(site, make_user, settings):
    """Production's second factor in the browser: a new operator is sent from the password to
    the enrolment page, confirms an authenticator with the code computed from the key the page
    shows, is shown ten recovery codes once, reaches the admin; signs in again with a recovery
    code. No page breaks the policy or logs an error."""
    settings.ADMIN_REQUIRE_2FA = True
    user = make_user("operator", username="browser-2fa")
    problems: list[str] = []
    base = site.url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context().new_page()
            page.on("console", lambda m: _console(m, page, problems))
            page.on("pageerror", lambda e: problems.append(f"{page.url}: page error: {e}"))
            page.goto(f"{base}{reverse('admin:index')}")
            page.fill("#id_username", user.username)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(re.compile(re.escape(reverse("admin:otp_enrol"))))
            assert page.locator("img.qr").get_attribute("src").startswith("data:image/svg+xml")
            key = "".join(page.locator("p.key span").all_inner_texts())
            page.fill("input[name=code]", _totp_now(key))
            page.click("input[type=submit]")
            codes = page.locator("ol.recovery-codes code").all_inner_texts()
            assert len(codes) == 10, page.content()
            page.click("text=I have saved them; continue")
            page.wait_for_url(f"{base}{reverse('admin:index')}")

            second = browser.new_context().new_page()  # another browser, another session
            second.on("console", lambda m: _console(m, second, problems))
            second.goto(f"{base}{reverse('admin:login')}")
            second.fill("#id_username", user.username)
            second.fill("#id_password", PASSWORD)
            second.click("input[type=submit]")
            second.wait_for_url(re.compile(re.escape(reverse("admin:otp_verify"))))
            second.fill("input[name=code]", codes[0])
            second.click("input[type=submit]")
            second.wait_for_url(f"{base}{reverse('admin:index')}")
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    assert not _csp_reports()
