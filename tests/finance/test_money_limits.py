"""The largest amounts the ledger accepts are stored and read back exactly on both engines;
larger ones are refused before anything is written (money.EXACT_DIGITS)."""

from decimal import Decimal

import pytest
from django.db import connection

from finance import money, services
from finance.exceptions import RuleViolation
from finance.models import AccountBalance, AccountType, JournalEntry, JournalLine
from tests.conftest import line
from tests.finance.factories import AccountFactory, JournalEntryFactory

ENTRIES = "/api/v1/entries/"
LIMITS = {"USD": "9999999999999.99", "JPY": "999999999999999", "BHD": "999999999999.999"}


def test_limits_are_fifteen_significant_digits_at_the_minor_unit():
    assert {c: str(money.max_amount(c)) for c in LIMITS} == LIMITS
    assert all(money.within_limit(Decimal(v), c) for c, v in LIMITS.items())
    assert not money.within_limit(Decimal("10000000000000.00"), "USD")


def _pair(currency: str):
    debit = AccountFactory(currency=currency, type=AccountType.ASSET)
    credit = AccountFactory(currency=currency, type=AccountType.EQUITY)
    return debit, credit


def _post_via_api(api, ledger, clerk, approver, lines):
    body = {"entry_date": ledger.today.isoformat(), "description": "big", "lines": lines}
    created = api.as_user(clerk).post(ENTRIES, body, format="json")
    assert created.status_code == 201, created.content
    entry = created.json()["id"]
    assert api.as_user(clerk).post(f"{ENTRIES}{entry}/submit/").status_code == 200
    approved = api.as_user(approver).post(f"{ENTRIES}{entry}/approve/")
    assert approved.status_code == 200, approved.content
    return entry


@pytest.mark.parametrize("currency", sorted(LIMITS))
def test_largest_amount_is_stored_and_read_back_exactly(api, ledger, clerk, approver, currency):
    limit = LIMITS[currency]
    debit, credit = _pair(currency)
    lines = [
        {"account": debit.pk, "side": "D", "amount": limit},
        {"account": credit.pk, "side": "C", "amount": limit},
    ]
    entry = _post_via_api(api, ledger, clerk, approver, lines)

    shown = api.as_user(approver).get(f"{ENTRIES}{entry}/").json()
    assert shown["status"] == "posted"
    assert [ln["amount"] for ln in shown["lines"]] == [limit, limit]
    assert [ln.amount for ln in JournalLine.objects.filter(entry_id=entry)] == [Decimal(limit)] * 2
    listed = api.as_user(approver).get(ENTRIES).json()["results"]
    assert [ln["amount"] for ln in listed[0]["lines"]] == [limit, limit]
    account = api.as_user(approver).get(f"/api/v1/accounts/{debit.pk}/").json()
    assert account["balance"] == limit
    balance = api.as_user(approver).get(f"/api/v1/accounts/{debit.pk}/balance/").json()
    assert balance["debit_total"] == limit and balance["balance"] == limit
    as_of = api.as_user(approver).get(
        f"/api/v1/accounts/{credit.pk}/balance/?as_of={ledger.today.isoformat()}"
    )
    assert as_of.json()["credit_total"] == limit


@pytest.mark.parametrize(
    ("debits", "credit"),
    [
        (["7777777777777.77", "1111111111111.11", "1111111111111.11"], "9999999999999.99"),
        (["1000000000000.10", "0.20"], "1000000000000.30"),
        (["3333333333333.33"] * 3, "9999999999999.99"),
        (["100000000000.01", "0.02"], "100000000000.03"),
    ],
)
def test_entries_split_into_large_lines_post_on_both_engines(
    api, ledger, clerk, approver, debits, credit
):
    # On SQLite a float sum of these lines is not zero; the balance guard sums exact integers.
    accounts = [AccountFactory(type=AccountType.ASSET) for _ in debits]
    equity = AccountFactory(type=AccountType.EQUITY)
    lines = [{"account": a.pk, "side": "D", "amount": d} for a, d in zip(accounts, debits)]
    lines.append({"account": equity.pk, "side": "C", "amount": credit})
    entry = _post_via_api(api, ledger, clerk, approver, lines)
    stored = JournalLine.objects.filter(entry_id=entry).order_by("line_no")
    assert [str(ln.amount.normalize()) for ln in stored] == [
        str(Decimal(a).normalize()) for a in [*debits, credit]
    ]
    assert AccountBalance.objects.get(account=equity).credit_total == Decimal(credit)


@pytest.mark.parametrize(
    ("currency", "amount"),
    [
        ("USD", "10000000000000.00"),
        ("USD", "9999999999999.999"),
        ("JPY", "1000000000000000"),
        ("BHD", "1000000000000.000"),
        ("USD", "100000000000000.01"),
        ("USD", "9999999999999999.99"),
    ],
)
def test_amounts_over_the_limit_are_a_400_naming_it(api, ledger, clerk, currency, amount):
    debit, credit = _pair(currency)
    body = {
        "entry_date": ledger.today.isoformat(),
        "description": "too big",
        "lines": [
            {"account": debit.pk, "side": "D", "amount": amount},
            {"account": credit.pk, "side": "C", "amount": amount},
        ],
    }
    response = api.as_user(clerk).post(ENTRIES, body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    message = str(error["fields"]["lines"])
    assert "15 significant digits" in message
    assert not JournalEntry.objects.exists() and not JournalLine.objects.exists()


def test_services_refuse_amounts_over_the_limit(ledger, clerk):
    with pytest.raises(RuleViolation) as refused:
        services.journal_entry_create(
            entry_date=ledger.today,
            description="too big",
            created_by=clerk,
            lines=[
                line(ledger.cash, "D", Decimal("10000000000000.00")),
                line(ledger.equity, "C", Decimal("10000000000000.00")),
            ],
        )
    assert [v.code for v in refused.value.violations] == ["line.amount_too_large"] * 2
    assert not JournalEntry.objects.exists()


def test_posting_past_an_accounts_total_limit_is_refused(api, ledger, clerk, approver, post):
    debit, credit = _pair("USD")
    post(debit, credit, LIMITS["USD"])
    more = JournalEntryFactory(
        entry_date=ledger.today,
        description="one cent more",
        created_by=clerk,
        lines=[line(debit, "D", Decimal("0.01")), line(ledger.equity, "C", Decimal("0.01"))],
    )
    services.journal_entry_submit(entry=more, actor=clerk)
    response = api.as_user(approver).post(f"{ENTRIES}{more.pk}/approve/")
    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "account.total_too_large"
    more.refresh_from_db()
    assert more.status == "pending_approval" and more.number is None
    assert AccountBalance.objects.get(account=debit).debit_total == Decimal(LIMITS["USD"])
    assert AccountBalance.objects.get(account=ledger.equity).credit_total == 0


def test_sqlite_reads_an_amount_stored_past_the_limit_before_it_was_refused(api, ledger, clerk):
    if connection.features.guard_dialect != "sqlite":
        pytest.skip("SQLite's float storage only")
    entry = JournalEntryFactory(
        entry_date=ledger.today,
        description="old row",
        created_by=clerk,
        lines=[line(ledger.cash, "D", Decimal("1.00")), line(ledger.equity, "C", Decimal("1.00"))],
    )
    with connection.cursor() as cursor:  # a draft's lines may change; SQLite rounds it to 1E+16
        cursor.execute(
            "UPDATE finance_journalline SET amount = '9999999999999999.99' WHERE entry_id = %s",
            [entry.pk],
        )
    response = api.as_user(clerk).get(ENTRIES)
    assert response.status_code == 200, response.content
    assert response.json()["results"][0]["lines"][0]["amount"] == "10000000000000000.00"
