"""The admin refuses what the API refuses, with the same rule codes, and writes through services."""

from decimal import Decimal

import pytest

from finance import services
from finance.models import EntryStatus, JournalEntry, JournalLine
from finance.rules import period_for
from tests.conftest import line
from tests.finance.factories import JournalEntryFactory

ADD = "/admin/finance/journalentry/add/"


def form(ledger, lines, entry_date=None):
    data = {
        "entry_date": (entry_date or ledger.today).isoformat(),
        "description": "Admin entry",
        "reference": "",
        "lines-TOTAL_FORMS": str(len(lines)),
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
    }
    for i, (account, side, amount) in enumerate(lines):
        data |= {
            f"lines-{i}-account": str(account.pk),
            f"lines-{i}-side": side,
            f"lines-{i}-amount": amount,
            f"lines-{i}-description": "",
        }
    return data


@pytest.fixture
def clerk_client(client, clerk):
    client.force_login(clerk)
    return client


def test_clerk_adds_draft_through_the_admin(clerk_client, ledger):
    response = clerk_client.post(
        ADD, form(ledger, [(ledger.expense, "D", "12.50"), (ledger.cash, "C", "12.50")])
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    entry = JournalEntry.objects.get()
    assert entry.status == EntryStatus.DRAFT and entry.created_by.username == "clerk"
    assert [ln.amount for ln in entry.lines.all()] == [Decimal("12.50")] * 2


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        (lambda lg: [(lg.expense, "D", "12.50"), (lg.cash, "C", "12.00")], "entry.unbalanced"),
        (
            lambda lg: [(lg.expense, "D", "12.505"), (lg.cash, "C", "12.505")],
            "line.amount_not_quantized",
        ),
        (lambda lg: [(lg.expense, "D", "12.50")], "entry.too_few_lines"),
        (lambda lg: [(lg.bank_eur, "D", "5.00"), (lg.cash, "C", "5.00")], "entry.unbalanced"),
    ],
)
def test_hostile_entry_is_refused_with_rule_code(clerk_client, ledger, lines, code):
    response = clerk_client.post(ADD, form(ledger, lines(ledger)))
    assert response.status_code == 200  # form shown again with the errors
    assert f"[{code}]" in response.content.decode()
    assert not JournalEntry.objects.exists() and not JournalLine.objects.exists()


def test_negative_amount_is_refused(clerk_client, ledger):
    response = clerk_client.post(
        ADD, form(ledger, [(ledger.expense, "D", "-1.00"), (ledger.cash, "C", "-1.00")])
    )
    assert response.status_code == 200
    assert "greater than zero" in response.content.decode()
    assert not JournalEntry.objects.exists()


def test_closed_period_is_refused(clerk_client, ledger, approver):
    services.period_close(period=period_for(ledger.today), actor=approver)
    response = clerk_client.post(
        ADD, form(ledger, [(ledger.expense, "D", "1.00"), (ledger.cash, "C", "1.00")])
    )
    assert "[period.closed]" in response.content.decode()
    assert not JournalEntry.objects.exists()


def test_actions_submit_then_self_approval_refused_then_approved(
    client, ledger, make_user, approver, post
):
    post(ledger.cash, ledger.equity, "100.00")
    both = make_user("finance_clerk", "finance_approver")
    client.force_login(both)
    client.post(ADD, form(ledger, [(ledger.expense, "D", "10.00"), (ledger.cash, "C", "10.00")]))
    entry = JournalEntry.objects.get(status=EntryStatus.DRAFT)
    changelist = "/admin/finance/journalentry/"
    client.post(changelist, {"action": "submit_entries", "_selected_action": [entry.pk]})
    entry.refresh_from_db()
    assert entry.status == EntryStatus.PENDING_APPROVAL
    response = client.post(
        changelist, {"action": "approve_entries", "_selected_action": [entry.pk]}, follow=True
    )
    assert "[entry.self_approval]" in response.content.decode()
    entry.refresh_from_db()
    assert entry.status == EntryStatus.PENDING_APPROVAL
    client.force_login(approver)
    client.post(changelist, {"action": "approve_entries", "_selected_action": [entry.pk]})
    entry.refresh_from_db()
    assert entry.status == EntryStatus.POSTED and entry.approved_by == approver


def test_posted_entry_is_read_only_in_the_admin(client, ledger, admin_user, post, make_user):
    entry = post(ledger.cash, ledger.equity)
    superuser = make_user(is_superuser=True)
    client.force_login(superuser)
    url = f"/admin/finance/journalentry/{entry.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="description"' not in page  # no editable field
    client.post(url, {"entry_date": "2001-01-01", "description": "edited"})
    entry.refresh_from_db()
    assert entry.description == "Test entry"
    assert (
        client.post(f"/admin/finance/journalentry/{entry.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert JournalEntry.objects.filter(pk=entry.pk).exists()


def test_account_admin_locks_type_and_currency_once_used(client, ledger, admin_user, post):
    post(ledger.cash, ledger.equity)
    client.force_login(admin_user)
    page = client.get(f"/admin/finance/account/{ledger.cash.pk}/change/").content.decode()
    assert 'name="currency"' not in page and 'name="name"' in page


def test_someone_elses_draft_is_read_only_in_the_admin(client, ledger, clerk, make_user):
    entry = JournalEntryFactory(
        entry_date=ledger.today,
        description="Carl's",
        created_by=clerk,
        lines=[line(ledger.cash, "D", Decimal("1.00")), line(ledger.equity, "C", Decimal("1.00"))],
    )
    client.force_login(make_user("finance_clerk"))
    page = client.get(f"/admin/finance/journalentry/{entry.pk}/change/").content.decode()
    assert 'name="description"' not in page


def test_owner_edits_draft_lines_in_the_admin(clerk_client, ledger, clerk):
    entry = JournalEntryFactory(
        entry_date=ledger.today,
        description="Before",
        created_by=clerk,
        lines=[line(ledger.cash, "D", Decimal("1.00")), line(ledger.equity, "C", Decimal("1.00"))],
    )
    lines = list(entry.lines.all())
    data = form(ledger, [(ledger.expense, "D", "7.00"), (ledger.cash, "C", "7.00")])
    data |= {
        "description": "After",
        "lines-INITIAL_FORMS": "2",
        "lines-0-id": str(lines[0].pk),
        "lines-1-id": str(lines[1].pk),
        "lines-0-entry": str(entry.pk),
        "lines-1-entry": str(entry.pk),
    }
    response = clerk_client.post(f"/admin/finance/journalentry/{entry.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    entry.refresh_from_db()
    assert entry.description == "After"
    assert [(ln.account_id, ln.amount) for ln in entry.lines.all()] == [
        (ledger.expense.pk, Decimal("7.00")),
        (ledger.cash.pk, Decimal("7.00")),
    ]


@pytest.mark.parametrize(
    ("state", "title"),
    [
        ("draft", "Draft #{pk}"),
        ("pending", "Pending approval #{pk}"),
        ("posted", "{number} (Posted)"),
        ("reversed", "{number} (Reversed)"),
    ],
)
def test_entry_page_is_titled_by_its_status(client, ledger, clerk, approver, state, title):
    entry = JournalEntryFactory(
        entry_date=ledger.today,
        description="Titled",
        created_by=clerk,
        lines=[line(ledger.cash, "D", Decimal("1.00")), line(ledger.equity, "C", Decimal("1.00"))],
    )
    if state != "draft":
        services.journal_entry_submit(entry=entry, actor=clerk)
    if state in ("posted", "reversed"):
        entry = services.journal_entry_approve(entry=entry, actor=approver)
    if state == "reversed":
        services.journal_entry_reverse(entry=entry, actor=approver)
    entry.refresh_from_db()
    assert entry.status == {"pending": EntryStatus.PENDING_APPROVAL}.get(state, state)
    expected = title.format(pk=entry.pk, number=entry.display_number)
    client.force_login(approver)
    page = client.get(f"/admin/finance/journalentry/{entry.pk}/change/").content.decode()
    assert f"<h2>{expected}</h2>" in page
    assert f"<title>{expected} | " in page
    other = "Draft" if state != "draft" else "Pending"
    assert other not in page.split("<title>")[1].split("</title>")[0]
