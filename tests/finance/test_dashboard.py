"""The Financial dashboard (finance/admin/dashboard.py): who sees what, its actions through
the services (maker-checker, the close's checks), bounded queries, hostile query strings, its
Overview tiles and the demo it is shown with."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from finance import services
from finance.admin.dashboard import overview_tiles
from finance.models import AccountBalance, EntryStatus, FiscalPeriod, JournalEntry, PeriodStatus
from integrity import services as integrity
from integrity.models import CheckRun
from tests.conftest import line

pytestmark = pytest.mark.django_db

PAGE = reverse("admin:dashboard_financial")
APPROVE = reverse("admin:dashboard_financial_approve")
REJECT = reverse("admin:dashboard_financial_reject")
CLOSE = reverse("admin:dashboard_financial_close")
ROLES = ("finance_clerk", "finance_approver", "auditor", "operator", "admin")


def draft(ledger, author, amount="25.00", *, entry_date=None, description="Dashboard entry"):
    return services.journal_entry_create(
        entry_date=entry_date or ledger.today,
        description=description,
        lines=[
            line(ledger.expense, "D", Decimal(amount)),
            line(ledger.cash, "C", Decimal(amount)),
        ],
        created_by=author,
    )


def pending(ledger, author, **kwargs) -> JournalEntry:
    return services.journal_entry_submit(entry=draft(ledger, author, **kwargs), actor=author)


def last_month(ledger) -> FiscalPeriod:
    first = ledger.today.replace(day=1)
    return FiscalPeriod.objects.get(end_date=first - timedelta(days=1))


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def funded(ledger, post):
    """Cash to spend, posted in last month so that it can be closed."""
    post(ledger.cash, ledger.equity, "1000.00", entry_date=last_month(ledger).start_date)
    return ledger


def as_role(client, make_user, role):
    client.force_login(make_user(role, username=f"u-{role}"))
    return client


# --- who sees what ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_page_with_its_own_sections_and_buttons(
    client, make_user, funded, clerk, role
):
    pending(funded, clerk)
    response = as_role(client, make_user, role).get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Trial balance as of" in html and "Reconciliation" in html
    assert "Entries waiting for approval (1)" in html and "Periods and their close" in html
    assert html.count('class="lg-chart"') == 2
    assert ("Open findings of the financial checks" in html) == (role != "finance_clerk")
    assert (APPROVE in html) == (role == "finance_approver")
    assert (REJECT in html) == (role == "finance_approver")
    assert (CLOSE in html) == (role in ("finance_approver", "admin"))


def test_staff_without_a_finance_role_is_refused(client, make_user):
    client.force_login(make_user())
    assert client.get(PAGE).status_code == 403
    assert client.post(APPROVE, {"entry": "1"}).status_code == 403


def test_anonymous_is_sent_to_the_login(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_approver_sees_no_approve_button_on_their_own_entry(client, approver, ledger):
    own = pending(ledger, approver)
    client.force_login(approver)
    html = client.get(PAGE).content.decode()
    assert "Your own entry: another approver decides." in html
    assert f'name="entry" value="{own.pk}"' in html  # sending back stays possible
    assert "Approve and post" not in html


# --- actions ---------------------------------------------------------------------------------


def test_an_approver_approves_a_clerks_entry_from_the_page(client, approver, clerk, funded):
    entry = pending(funded, clerk)
    client.force_login(approver)
    response = client.post(APPROVE, {"entry": entry.pk, "next": PAGE + "?page=1"})
    assert response.status_code == 302 and response["Location"] == PAGE + "?page=1"
    entry.refresh_from_db()
    assert entry.status == EntryStatus.POSTED and entry.approved_by == approver
    assert AuditEvent.objects.filter(action="journal_entry.approved", object_id=entry.pk).exists()
    assert any("approved and posted" in m for m in messages_of(response))


def test_maker_checker_refuses_the_approvers_own_entry_with_a_message(client, approver, funded):
    entry = pending(funded, approver)
    client.force_login(approver)
    response = client.post(APPROVE, {"entry": entry.pk})
    assert response.status_code == 302 and response["Location"] == PAGE
    entry.refresh_from_db()
    assert entry.status == EntryStatus.PENDING_APPROVAL
    [message] = messages_of(response)
    assert "was not approved" in message and "different person" in message


def test_an_approver_sends_an_entry_back(client, approver, clerk, ledger):
    entry = pending(ledger, clerk)
    client.force_login(approver)
    response = client.post(REJECT, {"entry": entry.pk})
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.status == EntryStatus.DRAFT
    assert AuditEvent.objects.filter(action="journal_entry.rejected", object_id=entry.pk).exists()


@pytest.mark.parametrize("role", ["finance_clerk", "auditor", "operator", "admin"])
def test_other_roles_cannot_approve_or_send_back(client, make_user, clerk, ledger, role):
    entry = pending(ledger, clerk)
    as_role(client, make_user, role)
    assert client.post(APPROVE, {"entry": entry.pk}).status_code == 403
    assert client.post(REJECT, {"entry": entry.pk}).status_code == 403
    entry.refresh_from_db()
    assert entry.status == EntryStatus.PENDING_APPROVAL


def test_an_approver_closes_a_period_and_the_checks_run_first(client, approver, funded):
    period = last_month(funded)
    client.force_login(approver)
    response = client.post(CLOSE, {"period": period.pk})
    assert response.status_code == 302
    period.refresh_from_db()
    assert period.status == PeriodStatus.CLOSED and period.closed_by == approver
    run = CheckRun.objects.get(trigger="period_close")
    assert run.tags == ["finance"] and run.status == "pass"
    assert AuditEvent.objects.filter(action="period.closed", object_id=period.pk).exists()
    assert any("closed" in m for m in messages_of(response))


def test_a_close_is_refused_while_a_check_finds_an_error(client, approver, funded):
    period = last_month(funded)
    AccountBalance.objects.filter(account=funded.cash).update(debit_total=Decimal("1000.50"))
    client.force_login(approver)
    response = client.post(CLOSE, {"period": period.pk})
    assert response.status_code == 302
    period.refresh_from_db()
    assert period.status == PeriodStatus.OPEN
    [message] = messages_of(response)
    assert "was not closed" in message and "finance.balance_cache" in message
    # The page then shows the mismatch and the open finding, linked to its admin page.
    html = client.get(PAGE).content.decode()
    assert "1 account whose cached balance differs" in html
    finding = CheckRun.objects.get(trigger="period_close").findings.get(
        check_name="finance.balance_cache"
    )
    assert reverse("admin:integrity_finding_change", args=[finding.pk]) in html


def test_a_period_with_entries_waiting_is_not_closed(client, approver, clerk, funded):
    period = last_month(funded)
    pending(funded, clerk, entry_date=period.end_date)
    client.force_login(approver)
    response = client.post(CLOSE, {"period": period.pk})
    assert response.status_code == 302
    period.refresh_from_db()
    assert period.status == PeriodStatus.OPEN
    assert any("was not closed" in m for m in messages_of(response))


@pytest.mark.parametrize("role", ["finance_clerk", "auditor", "operator"])
def test_roles_without_the_close_permission_cannot_close(client, make_user, funded, role):
    period = last_month(funded)
    as_role(client, make_user, role)
    assert client.post(CLOSE, {"period": period.pk}).status_code == 403
    period.refresh_from_db()
    assert period.status == PeriodStatus.OPEN


@pytest.mark.parametrize("url", [APPROVE, REJECT, CLOSE])
@pytest.mark.parametrize(
    "body", [{"tag": "none"}, {"entry": "x", "period": "x"}, {"entry": "9" * 40, "period": "-1"}]
)
def test_a_bogus_body_is_a_message_not_an_error(client, approver, ledger, url, body):
    client.force_login(approver)
    response = client.post(url, body)
    assert response.status_code == 302 and response["Location"] == PAGE
    assert any("nothing was" in m for m in messages_of(response))


def test_an_unknown_id_is_a_404(client, approver, ledger):
    client.force_login(approver)
    assert client.post(APPROVE, {"entry": "987654"}).status_code == 404
    assert client.post(CLOSE, {"period": "987654"}).status_code == 404


def test_next_goes_only_to_this_site(client, approver, clerk, ledger):
    entry = pending(ledger, clerk)
    client.force_login(approver)
    response = client.post(REJECT, {"entry": entry.pk, "next": "https://evil.example/"})
    assert response["Location"] == PAGE


def test_actions_answer_only_post(client, approver):
    client.force_login(approver)
    assert client.get(APPROVE).status_code == 405


# --- bounded queries and hostile query strings -----------------------------------------------


def test_the_page_costs_the_same_queries_with_five_times_the_rows(
    client, approver, clerk, funded, django_assert_max_num_queries
):
    for _ in range(3):
        pending(funded, clerk)
    client.force_login(approver)
    client.get(PAGE)  # warm the caches that are not the page's (content types, sites)
    with django_assert_max_num_queries(17) as small:
        assert client.get(PAGE).status_code == 200
    for _ in range(12):
        pending(funded, clerk)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(PAGE).status_code == 200


def test_the_tiles_cost_a_few_queries_however_many_rows(
    approver, clerk, funded, django_assert_max_num_queries
):
    request = RequestFactory().get("/admin/")
    request.user = approver
    for _ in range(2):
        pending(funded, clerk)
    overview_tiles(request)  # the user's permissions cached, as on a real page
    with django_assert_max_num_queries(4):
        overview_tiles(request)
    for _ in range(10):
        pending(funded, clerk)
    with django_assert_max_num_queries(4):
        overview_tiles(request)


@pytest.mark.parametrize(
    "query",
    [
        "?as_of=garbage",
        "?as_of=99999-99-99",
        "?as_of=" + "9" * 5000,
        "?as_of=",
        "?as_of=1900-01-01",
        "?page=x",
        "?page=-3",
        "?page=99999999999999999999",
        "?tb_page=zzz&page=0",
        "?range=zzz",
        "?as_of=2026-01-01&as_of=x",
    ],
)
def test_hostile_query_strings_never_break_the_page(client, approver, funded, query):
    client.force_login(approver)
    assert client.get(PAGE + query).status_code == 200


def test_an_invalid_date_shows_a_form_error_and_today(client, approver, funded):
    client.force_login(approver)
    html = client.get(PAGE + "?as_of=garbage").content.decode()
    assert "Enter a valid date." in html
    assert f"Trial balance as of {funded.today:%Y-%m-%d}" in html


def test_the_trial_balance_as_of_a_date_leaves_out_later_postings(client, approver, funded, post):
    post(funded.expense, funded.cash, "40.00")
    client.force_login(approver)
    before = last_month(funded).end_date
    html = client.get(PAGE + f"?as_of={before:%Y-%m-%d}").content.decode()
    html = html[html.index('id="trial-balance"') : html.index('id="reconciliation"')]
    assert "1,000.00" in html and "40.00" not in html
    assert "Debits equal credits in every currency." in html


# --- Overview tiles --------------------------------------------------------------------------


def tiles_for(user) -> dict:
    request = RequestFactory().get("/admin/")
    request.user = user
    return {t.key: t for t in overview_tiles(request)}


def test_tiles_are_green_on_sound_books(approver, ledger):
    tiles = tiles_for(approver)
    assert tiles["finance-approvals"].status == "ok"
    assert tiles["finance-findings"].status == "none"  # the checks never ran
    integrity.checks_run(trigger=CheckRun.Trigger.COMMAND, tags=["finance"])
    assert tiles_for(approver)["finance-findings"].status == "ok"


def test_tiles_say_what_is_wrong(approver, clerk, funded):
    old = pending(funded, clerk)
    JournalEntry.objects.filter(pk=old.pk).update(submitted_at=timezone.now() - timedelta(days=10))
    AccountBalance.objects.filter(account=funded.cash).update(debit_total=Decimal("1000.50"))
    integrity.checks_run(trigger=CheckRun.Trigger.COMMAND, tags=["finance"])
    tiles = tiles_for(approver)
    assert tiles["finance-approvals"].status == "bad"
    assert "10 days" in tiles["finance-approvals"].summary
    assert tiles["finance-periods"].status in ("warn", "bad")  # last month ended, still open
    assert "ended period" in tiles["finance-periods"].summary
    assert tiles["finance-findings"].status == "bad"
    assert "error level" in tiles["finance-findings"].summary


def test_the_clerk_gets_no_findings_tile(clerk, ledger):
    assert "finance-findings" not in tiles_for(clerk)


def test_the_overview_shows_the_tiles(client, approver, ledger):
    client.force_login(approver)
    html = client.get(reverse("admin:index")).content.decode()
    assert "Entries waiting for approval" in html and "Period close" in html


# --- the demo --------------------------------------------------------------------------------


def test_the_demo_month_renders_with_charts_and_some_trouble(client):
    call_command("seed_demo", days=30, stdout=StringIO())
    assert JournalEntry.objects.filter(status=EntryStatus.PENDING_APPROVAL).count() == 3
    assert JournalEntry.objects.filter(status=EntryStatus.DRAFT).count() == 1
    client.force_login(get_user_model().objects.get(username="admin"))
    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('src="data:image/svg+xml;base64,') == 2
    assert "Entries waiting for approval (3)" in html
    assert "Debits equal credits in every currency." in html
