"""Many clerks posting to the same accounts at once: no lost update, no gap, no deadlock."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Q, Sum

from audit import services as audit_services
from audit.models import AuditEvent
from finance import reports, services
from finance.models import AccountBalance, JournalEntry, JournalLine
from tests.conftest import line
from tests.finance.factories import JournalEntryFactory, record_random_entries
from tests.threads import run_threads

THREADS = 8
PER_THREAD = 20


@pytest.mark.django_db(transaction=True)
def test_concurrent_postings_keep_balances_exact_and_numbers_gapless(ledger, make_user):
    system = make_user("finance_approver")
    services.journal_entry_record(
        entry_date=ledger.today,
        description="Funding",
        actor=system,
        lines=[
            line(ledger.cash, "D", Decimal("1000000.00")),
            line(ledger.equity, "C", Decimal("1000000.00")),
        ],
    )

    def poster(i):
        record_random_entries(ledger, system, seed=i, count=PER_THREAD)

    errors = run_threads(poster, THREADS)
    assert not errors, errors[:3]

    posted = JournalEntry.objects.filter(number__isnull=False)
    assert posted.count() == 1 + THREADS * PER_THREAD
    numbers = sorted(posted.values_list("number", flat=True))
    assert numbers == list(range(1, len(numbers) + 1))
    for bal in AccountBalance.objects.all():
        sums = JournalLine.objects.filter(account_id=bal.account_id).aggregate(
            d=Sum("amount", filter=Q(side="D")), c=Sum("amount", filter=Q(side="C"))
        )
        assert bal.debit_total == (sums["d"] or 0), bal.account
        assert bal.credit_total == (sums["c"] or 0), bal.account
    tb = reports.trial_balance()
    assert tb.is_balanced
    assert reports.trial_balance(as_of=ledger.today).totals == tb.totals
    # The audit trail of all that: one posting event per entry, in one unbroken chain.
    assert AuditEvent.objects.filter(action="journal_entry.posted").count() == posted.count()
    assert audit_services.chain_verify(triggered_by="test").status == "ok"


@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_of_one_entry_post_it_once(ledger, clerk, make_user):
    entry = JournalEntryFactory(
        entry_date=ledger.today,
        description="Once",
        created_by=clerk,
        lines=[
            line(ledger.expense, "D", Decimal("10.00")),
            line(ledger.overdraft, "C", Decimal("10.00")),
        ],
    )
    services.journal_entry_submit(entry=entry, actor=clerk)
    approvers = [make_user("finance_approver") for _ in range(4)]
    outcomes: list[str] = []

    def approve(i):
        try:
            services.journal_entry_approve(entry=entry, actor=approvers[i])
            outcomes.append("posted")
        except Exception as exc:  # noqa: BLE001
            outcomes.append(getattr(exc, "code", repr(exc)))

    assert not run_threads(approve, 4)
    assert sorted(outcomes) == ["entry.invalid_state"] * 3 + ["posted"]
    approved = AuditEvent.objects.filter(action="journal_entry.approved", object_id=str(entry.pk))
    assert approved.count() == 1  # the three refused attempts left no event
    assert AccountBalance.objects.get(account=ledger.expense).debit_total == Decimal("10.00")


def test_engine_is_reported(db):
    # Documents in the test log which engine these concurrency tests ran on.
    assert connection.features.guard_dialect in ("sqlite", "postgresql"), connection.display_name
