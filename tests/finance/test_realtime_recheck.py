"""The real-time re-check: after each posting commits, the touched accounts' cached balances
are compared with their posted lines, and a mismatch raises the critical alert at once."""

import random
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Q, Sum

from alerts.models import Alert
from finance import recheck, selectors, services, tasks
from finance.exceptions import RuleViolation
from finance.models import (
    AccountBalance,
    BalanceCheckpoint,
    EntrySequence,
    EntrySource,
    JournalLine,
)
from finance.services import bulk
from finance.services.bulk import set_based_posting
from integrity import services as integrity
from integrity.models import CheckRun
from tests.conftest import line
from tests.finance.factories import JournalEntryFactory, record_random_entries
from tests.finance.helpers import guards_off
from tests.threads import run_threads

KEY = "finance.balance_cache"
D = Decimal


def balance_alert() -> Alert | None:
    return Alert.objects.filter(source="checks", key=KEY).order_by("-pk").first()


def bump_cache(account, amount: str = "5.00") -> None:
    """A balance row edited behind the services' back (a console, a bad migration)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE finance_accountbalance SET debit_total = debit_total + %s "
            "WHERE account_id = %s",
            [D(amount), account.pk],
        )


@pytest.fixture
def step_by_step(monkeypatch):
    """Record entries one step at a time (draft, post, re-check after the commit), as SQLite
    does: the after-commit re-check is what these tests are about. On PostgreSQL a recorded
    entry is otherwise re-checked inside its own transaction (finance/services/bulk.py)."""
    monkeypatch.setattr(bulk, "set_based_posting", lambda: False)


@pytest.fixture
def rechecks(monkeypatch):
    """The account ids of every re-check, while still running the real query."""
    calls: list[list[int]] = []
    real = selectors.balance_recheck

    def spy(*, account_ids):
        calls.append(sorted(account_ids))
        return real(account_ids=account_ids)

    monkeypatch.setattr(selectors, "balance_recheck", spy)
    return calls


def record(ledger, user, debit, credit, amount="10.00"):
    return services.journal_entry_record(
        entry_date=ledger.today,
        description="System",
        actor=user,
        source=EntrySource.SYSTEM,
        lines=[line(debit, "D", D(amount)), line(credit, "C", D(amount))],
    )


@pytest.mark.django_db(transaction=True)
def test_posting_to_an_account_whose_balance_row_was_edited_raises_the_alert_at_once(
    ledger, make_user
):
    system = make_user("finance_approver")
    record(ledger, system, ledger.cash, ledger.equity, "100.00")
    assert balance_alert() is None
    bump_cache(ledger.cash)
    entry = record(ledger, system, ledger.cash, ledger.revenue, "20.00")  # committed for real
    assert entry.number == 2  # the posting itself went through
    alert = balance_alert()
    assert (alert.state, alert.severity) == ("firing", "critical")
    assert alert.details["realtime"] is True
    [account] = alert.details["accounts"]
    assert (account["account_id"], account["code"]) == (ledger.cash.pk, "1000")
    assert account["cached"] == {"debit": "125.0000", "credit": "0.0000"}
    assert account["computed"] == {"debit": "120.0000", "credit": "0.0000"}
    assert not CheckRun.objects.exists()  # no scheduled or manual run was needed


@pytest.mark.parametrize("path", ["approve", "post", "record", "reverse"])
def test_every_posting_path_rechecks_the_accounts_it_touched(
    path, ledger, clerk, approver, post, rechecks, django_capture_on_commit_callbacks
):
    original = post(ledger.cash, ledger.equity, "30.00") if path == "reverse" else None
    rechecks.clear()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        if path == "approve":
            post(ledger.expense, ledger.overdraft, "10.00")
        elif path == "post":
            entry = JournalEntryFactory(
                entry_date=ledger.today,
                description="Fee",
                created_by=clerk,
                source=EntrySource.SYSTEM,
                lines=[
                    line(ledger.expense, "D", D("10.00")),
                    line(ledger.overdraft, "C", D("10.00")),
                ],
            )
            services.journal_entry_post(entry=entry, actor=approver)
        elif path == "record":
            entry = record(ledger, approver, ledger.expense, ledger.overdraft)
        else:
            services.journal_entry_reverse(entry=original, actor=approver)
    touched = (
        (ledger.cash, ledger.equity) if path == "reverse" else (ledger.expense, ledger.overdraft)
    )
    expected = [a.pk for a in touched]
    if path == "record" and set_based_posting():
        # Posted set-based: re-checked inside the posting's own transaction, which moved the
        # accounts' checkpoints to its number; nothing is left for after the commit.
        assert (callbacks, rechecks) == ([], [])
        through = BalanceCheckpoint.objects.filter(account_id__in=expected)
        assert sorted(through.values_list("account_id", "through_number")) == [
            (a, entry.number) for a in sorted(expected)
        ]
        return
    assert len(callbacks) == 1
    assert rechecks == [sorted(expected)]


def test_a_refused_posting_rechecks_nothing(
    ledger, approver, rechecks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuleViolation):
        record(ledger, approver, ledger.expense, ledger.overdraft, "10.001")
    assert rechecks == []


def test_the_realtime_path_never_resolves_the_alert(
    ledger, approver, post, django_capture_on_commit_callbacks
):
    post(ledger.cash, ledger.equity, "50.00")
    bump_cache(ledger.revenue)
    integrity.checks_run(trigger="command", tags=["finance"])  # a full run finds it
    assert balance_alert().state == "firing"
    with django_capture_on_commit_callbacks(execute=True):
        record(ledger, approver, ledger.expense, ledger.overdraft)  # clean accounts
    assert balance_alert().state == "firing" and balance_alert().occurrences == 1
    bump_cache(ledger.revenue, "-5.00")  # repaired
    with django_capture_on_commit_callbacks(execute=True):
        record(ledger, approver, ledger.cash, ledger.revenue)
    assert balance_alert().state == "firing"  # only a full run may say the books are clean
    integrity.checks_run(trigger="command", tags=["finance"])
    assert balance_alert().state == "resolved"


def test_an_explained_difference_raises_no_realtime_alert(
    ledger, approver, approver2, post, django_capture_on_commit_callbacks
):
    post(ledger.cash, ledger.equity, "50.00")
    bump_cache(ledger.cash)
    run = integrity.checks_run(trigger="command", tags=["finance"])
    finding = run.findings.get(check_name="finance.balance_cache")
    integrity.finding_explain(finding=finding, actor=approver2, reason="Opening balance, FIN-9")
    integrity.checks_run(trigger="command", tags=["finance"])
    assert balance_alert().state == "resolved"
    with django_capture_on_commit_callbacks(execute=True):  # the same difference: quiet
        record(ledger, approver, ledger.cash, ledger.equity)
    assert balance_alert().state == "resolved"
    bump_cache(ledger.cash)  # the difference grew: not what was explained
    with django_capture_on_commit_callbacks(execute=True):
        record(ledger, approver, ledger.cash, ledger.equity)
    assert Alert.objects.filter(source="checks", key=KEY, state="firing").exists()


def test_the_recheck_reads_only_lines_posted_since_its_checkpoint(
    ledger, approver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = record(ledger, approver, ledger.cash, ledger.equity, "10.00")
    point = BalanceCheckpoint.objects.get(account=ledger.cash, fiscal_year=first.fiscal_year)
    assert (point.through_number, point.debit_total) == (first.number, D("10.00"))
    with django_capture_on_commit_callbacks(execute=True):
        second = record(ledger, approver, ledger.cash, ledger.equity, "2.50")
    point.refresh_from_db()
    assert (point.through_number, point.debit_total) == (second.number, D("12.50"))
    # Nothing posted since the checkpoint: nothing to add, nothing to move.
    recheck = selectors.balance_recheck(account_ids=[ledger.cash.pk])
    assert recheck.mismatches == [] and recheck.verified == []  # nothing new: they stand
    # A balance row edited between postings is still caught at the next posting.
    bump_cache(ledger.cash)
    with django_capture_on_commit_callbacks(execute=True):
        record(ledger, approver, ledger.cash, ledger.equity, "1.00")
    assert balance_alert().state == "firing"
    point.refresh_from_db()
    # Checkpoints total lines, not the cache: they move on even while the cache is wrong.
    assert point.debit_total == D("13.50")


@pytest.mark.parametrize("far_behind", [False, True])
def test_far_behind_checkpoints_read_the_accounts_own_lines_with_the_same_result(
    far_behind, ledger, approver, monkeypatch, django_capture_on_commit_callbacks
):
    if far_behind:  # every checkpoint counts as far behind: the account-index path
        monkeypatch.setattr(selectors, "RECHECK_RANGE_LIMIT", 0)
    with django_capture_on_commit_callbacks(execute=True):
        record(ledger, approver, ledger.cash, ledger.equity, "4.00")
    for _ in range(3):  # others post meanwhile; cash's checkpoint falls behind
        record(ledger, approver, ledger.expense, ledger.revenue, "1.00")
    with django_capture_on_commit_callbacks(execute=True):
        last = record(ledger, approver, ledger.cash, ledger.equity, "6.00")
    point = BalanceCheckpoint.objects.get(account=ledger.cash, fiscal_year=last.fiscal_year)
    assert (point.through_number, point.debit_total) == (last.number, D("10.00"))
    assert balance_alert() is None


def test_a_wrong_checkpoint_never_pages_and_is_rebuilt(
    ledger, approver, django_capture_on_commit_callbacks
):
    """An old line changed behind the guards, then the cache set to match (the runbook's fix):
    the checkpoint no longer totals the lines. The re-check confirms against every line, finds
    the books consistent, drops the checkpoint and raises nothing."""
    with django_capture_on_commit_callbacks(execute=True):
        entry = record(ledger, approver, ledger.cash, ledger.equity, "10.00")
    with guards_off() as cursor:
        cursor.execute("UPDATE finance_journalline SET amount = 12 WHERE entry_id = %s", [entry.pk])
    bump_cache(ledger.cash, "2.00")  # the cache now matches the changed lines
    AccountBalance.objects.filter(account=ledger.equity).update(credit_total=D("12.00"))
    with django_capture_on_commit_callbacks(execute=True):
        record(ledger, approver, ledger.cash, ledger.equity, "1.00")
    assert balance_alert() is None
    assert not BalanceCheckpoint.objects.filter(account=ledger.cash).exists()
    with django_capture_on_commit_callbacks(execute=True):
        record(ledger, approver, ledger.cash, ledger.equity, "1.00")
    assert BalanceCheckpoint.objects.get(account=ledger.cash).debit_total == D("14.00")
    assert balance_alert() is None


def test_an_error_in_the_recheck_never_reaches_the_caller(
    ledger, approver, monkeypatch, django_capture_on_commit_callbacks, step_by_step
):
    logged = []

    def broken(**kwargs):
        raise RuntimeError("statement timeout")

    monkeypatch.setattr(selectors, "balance_recheck", broken)
    monkeypatch.setattr(recheck.logger, "exception", lambda msg, *args: logged.append(msg % args))
    with django_capture_on_commit_callbacks(execute=True):
        entry = record(ledger, approver, ledger.expense, ledger.overdraft)
    assert entry.number == 1
    ids = sorted([ledger.expense.pk, ledger.overdraft.pk])
    assert logged == [f"Real-time balance re-check of accounts {ids} failed"]


def test_async_mode_queues_the_task_and_the_task_raises_the_alert(
    ledger, approver, settings, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kw: queued.append(args))
    settings.FINANCE_REALTIME_RECHECK = "async"
    bump_cache(ledger.overdraft)
    with django_capture_on_commit_callbacks(execute=True):
        record(ledger, approver, ledger.expense, ledger.overdraft)
    ids = sorted([ledger.expense.pk, ledger.overdraft.pk])
    assert queued == [("finance.tasks.recheck_accounts", ids)]
    assert balance_alert() is None  # nothing ran in the posting's process
    assert "1 of 2 account(s)" in tasks.recheck_accounts(ids)
    tasks.recheck_accounts(ids)  # safe to run twice: the same alert, one more occurrence
    assert Alert.objects.filter(source="checks", key=KEY).count() == 1
    assert balance_alert().occurrences == 2


def test_off_mode_rechecks_nothing(
    ledger, approver, settings, rechecks, django_capture_on_commit_callbacks
):
    settings.FINANCE_REALTIME_RECHECK = "off"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        record(ledger, approver, ledger.expense, ledger.overdraft)
    assert rechecks == [] and callbacks == []


def test_the_shared_query_checks_only_the_accounts_it_is_given(ledger, post):
    post(ledger.cash, ledger.equity, "50.00")
    bump_cache(ledger.revenue)
    assert selectors.balance_mismatches(account_ids=[ledger.cash.pk, ledger.equity.pk]) == []
    assert selectors.balance_mismatches(account_ids=[]) == []
    [found] = selectors.balance_mismatches()
    assert found.account_id == ledger.revenue.pk and found.debit_difference == D("5")


THREADS = 8
PER_THREAD = 15


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["step by step", "set-based"])
def test_concurrent_postings_to_the_same_accounts_raise_no_alert(
    path, ledger, make_user, settings, rechecks, monkeypatch
):
    """Each re-check reads cache and lines in one statement (one snapshot): postings committing
    while it runs can never make them disagree. Set-based, it runs inside each posting, under
    its balance locks."""
    if path == "set-based" and not set_based_posting():
        pytest.skip("the set-based path is PostgreSQL's")
    if path == "step by step":
        monkeypatch.setattr(bulk, "set_based_posting", lambda: False)
    settings.FINANCE_REALTIME_RECHECK = "sync"
    system = make_user("finance_approver")
    record(ledger, system, ledger.cash, ledger.equity, "1000000.00")

    def poster(i):
        record_random_entries(ledger, system, seed=i, count=PER_THREAD)

    errors = run_threads(poster, THREADS)
    assert not errors, errors[:3]
    if path == "step by step":
        assert len(rechecks) == 1 + THREADS * PER_THREAD  # every posting was re-checked
    else:  # each posting moved its accounts' checkpoints on to its own number
        last = EntrySequence.objects.get(fiscal_year=ledger.today.year).last_number
        cash = BalanceCheckpoint.objects.get(account=ledger.cash, fiscal_year=ledger.today.year)
        assert cash.through_number > 1 and last == 1 + THREADS * PER_THREAD
    assert not Alert.objects.filter(source="checks", key=KEY).exists()
    assert selectors.balance_mismatches() == []
    assert AccountBalance.objects.get(account=ledger.cash).debit_total > 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_control_a_two_statement_recheck_would_raise_false_alarms(
    ledger, make_user, monkeypatch, step_by_step
):
    """The control for the test above: the same load with cache and lines read by two
    statements (a short pause between them) disagrees many times, with nothing corrupted."""
    false_alarms = []

    def two_statements(*, account_ids):
        cached = dict(
            AccountBalance.objects.filter(account_id__in=account_ids).values_list(
                "account_id", "debit_total"
            )
        )
        time.sleep(0.02)  # another posting commits meanwhile
        lines = JournalLine.objects.filter(entry__status__in=("posted", "reversed"))
        for account_id in account_ids:
            debits = lines.filter(account_id=account_id).aggregate(
                d=Sum("amount", filter=Q(side="D"))
            )
            if (debits["d"] or 0) != cached[account_id]:
                false_alarms.append(account_id)
        return selectors.Recheck([], [])

    monkeypatch.setattr(selectors, "balance_recheck", two_statements)
    system = make_user("finance_approver")
    record(ledger, system, ledger.cash, ledger.equity, "1000000.00")

    def poster(i):
        rnd = random.Random(i)
        for _ in range(PER_THREAD):
            amount = str(D(rnd.randint(1, 500_00)) / 100)
            record(
                ledger, system, rnd.choice([ledger.cash, ledger.expense]), ledger.revenue, amount
            )

    assert not run_threads(poster, THREADS)
    assert false_alarms
