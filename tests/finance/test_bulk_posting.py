"""Set-based posting (finance/services/bulk.py): the same rows as one posting at a time, every
rule and guard still in force, a batch that posts what it can and refuses the rest."""

import random
import threading
import time
from decimal import Decimal as D

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from finance import rules, selectors, services
from finance.exceptions import RuleViolation
from finance.models import (
    AccountBalance,
    BalanceCheckpoint,
    EntrySequence,
    EntrySource,
    JournalEntry,
    JournalLine,
)
from finance.services import bulk
from finance.services.bulk import EntryInput, entries_post, record_one, set_based_posting
from integrity.exceptions import OperationKeyReused
from integrity.models import OperationRecord
from tests.conftest import line
from tests.finance.factories import JournalEntryFactory
from tests.finance.test_realtime_recheck import balance_alert, bump_cache
from tests.threads import run_threads

set_based_only = pytest.mark.skipif(
    not set_based_posting(), reason="the set-based path is PostgreSQL's"
)


def entry(ledger, debit, credit, amount="10.00", **extra) -> EntryInput:
    return EntryInput(
        entry_date=extra.pop("entry_date", ledger.today),
        description=extra.pop("description", "Batch"),
        lines=[line(debit.pk, "D", D(amount)), line(credit.pk, "C", D(amount))],
        **extra,
    )


def batch(ledger, actor, *entries, key=None):
    return services.journal_entries_record_batch(
        entries=[
            {
                "entry_date": e.entry_date,
                "description": e.description,
                "reference": e.reference,
                "source": e.source,
                "lines": e.lines,
            }
            for e in entries
        ],
        actor=actor,
        idempotency_key=key,
    )


def written(entry_id: int) -> dict:
    """Everything a posting writes about one entry, without ids and times."""
    e = JournalEntry.objects.get(pk=entry_id)
    skip = {"id", "history_id", "history_date", "created_at", "posted_at", "entry_id", "number"}

    def plain(rows):
        return [{k: v for k, v in row.items() if k not in skip} for row in rows]

    events = AuditEvent.objects.filter(object_type="finance.journalentry", object_id=str(e.pk))
    return {
        "entry": plain(JournalEntry.objects.filter(pk=e.pk).values()),
        "lines": plain(e.lines.order_by("line_no").values()),
        "entry_history": plain(e.history.order_by("history_id").values()),
        "line_history": plain(
            JournalLine.history.filter(entry_id=e.pk).order_by("history_id").values()
        ),
        "events": [
            (ev.action, ev.object_repr.rstrip("0123456789"), ev.changes.get("status"), ev.metadata)
            for ev in events.order_by("id")
        ],
    }


def _strip_numbers(found: dict) -> dict:
    for _action, _repr, _status, metadata in found["events"]:
        metadata.pop("number", None)
    return found


@set_based_only
@pytest.mark.django_db(transaction=True)
def test_the_set_based_path_writes_what_one_posting_at_a_time_writes(ledger, approver):
    one = entry(ledger, ledger.cash, ledger.revenue, "12.34", reference="INV-1")
    with transaction.atomic():
        slow = record_one(one, approver)
    with transaction.atomic():
        [fast] = entries_post(entries=[one], actor_id=approver.pk)
    assert fast.entry.number == slow.number + 1
    assert _strip_numbers(written(fast.entry.pk)) == _strip_numbers(written(slow.pk))
    cash = AccountBalance.objects.get(account=ledger.cash)
    assert cash.debit_total == D("24.68")


@set_based_only
@pytest.mark.django_db(transaction=True)
def test_a_two_line_posting_sends_at_most_ten_statements(ledger, approver):
    record = services.journal_entry_record  # warm: the first posting of a run reads more

    def two_lines(amount):
        return [line(ledger.cash, "D", D(amount)), line(ledger.revenue, "C", D(amount))]

    record(entry_date=ledger.today, description="warm", lines=two_lines("1.00"), actor=approver)
    with CaptureQueriesContext(connection) as queries:
        posted = record(
            entry_date=ledger.today, description="x", lines=two_lines("2.00"), actor=approver
        )
    assert posted.status == "posted"
    assert len(queries) <= 10, "\n".join(q["sql"][:120] for q in queries)
    # ... and they included the re-check and the audit trail.
    assert BalanceCheckpoint.objects.get(account=ledger.cash).through_number == posted.number
    events = AuditEvent.objects.filter(object_type="finance.journalentry", object_id=str(posted.pk))
    assert events.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_batch_posts_what_it_can_and_refuses_the_rest_with_the_rules_codes(
    ledger, approver, settings
):
    settings.LEDGER_APPROVAL_THRESHOLDS = {"USD": D("1000.00")}  # manual entries from 1,000 USD
    results = batch(
        ledger,
        approver,
        entry(ledger, ledger.cash, ledger.equity, "100.00"),
        entry(ledger, ledger.cash, ledger.bank_eur),  # USD against EUR: each currency unbalanced
        EntryInput(
            ledger.today, "missing", [line(999_999, "D", D(1)), line(ledger.cash.pk, "C", D(1))]
        ),
        entry(ledger, ledger.expense, ledger.cash, "150.00"),  # cash would go below zero
        entry(ledger, ledger.expense, ledger.cash, "60.00"),
        entry(ledger, ledger.cash, ledger.equity, "10.001"),  # more places than USD has
        entry(ledger, ledger.cash, ledger.equity, "5.00", source=EntrySource.MANUAL),
        entry(ledger, ledger.cash, ledger.equity, "5000.00", source=EntrySource.MANUAL),
    )
    statuses = [(r["index"], r["status"], r.get("error", {}).get("code")) for r in results]
    assert statuses == [
        (0, "posted", None),
        (1, "refused", "entry.unbalanced"),
        (2, "refused", "line.account_missing"),
        (3, "refused", "account.negative_balance"),
        (4, "posted", None),
        (5, "refused", "line.amount_not_quantized"),
        (6, "posted", None),
        (7, "refused", "entry.approval_required"),
    ]
    # Gapless numbers, in the batch's order, for the posted entries only.
    numbers = [r["number"] for r in results if r["status"] == "posted"]
    assert numbers == [f"JE-{ledger.today.year}-{n:06d}" for n in (1, 2, 3)]
    assert JournalEntry.objects.count() == 3  # nothing of a refused entry was written
    assert JournalLine.objects.count() == 6
    cash = AccountBalance.objects.get(account=ledger.cash)
    assert (cash.debit_total, cash.credit_total) == (D("105.00"), D("60.00"))
    assert AuditEvent.objects.filter(action="journal_entry.posted").count() == 3
    refused = results[3]["error"]
    assert refused["fields"]["lines"][0]["code"] == "account.negative_balance"


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_idempotent_as_a_whole(ledger, approver):
    first = batch(ledger, approver, entry(ledger, ledger.cash, ledger.equity), key="b-1")
    again = batch(ledger, approver, entry(ledger, ledger.cash, ledger.equity), key="b-1")
    assert again == first
    assert JournalEntry.objects.count() == 1
    assert OperationRecord.objects.filter(key="b-1").count() == 1
    with pytest.raises(OperationKeyReused):
        batch(ledger, approver, entry(ledger, ledger.cash, ledger.equity, "2.00"), key="b-1")


@pytest.mark.django_db(transaction=True)
def test_a_batch_over_two_fiscal_years_numbers_each_year_on(ledger, approver):
    last_year = ledger.today.replace(year=ledger.today.year - 1, month=6, day=1)
    EntrySequence.objects.filter(fiscal_year=last_year.year).delete()  # its first posting
    results = batch(
        ledger,
        approver,
        entry(ledger, ledger.cash, ledger.equity),
        entry(ledger, ledger.cash, ledger.equity, entry_date=last_year),
        entry(ledger, ledger.cash, ledger.equity),
    )
    assert [r["number"] for r in results] == [
        f"JE-{ledger.today.year}-000001",
        f"JE-{last_year.year}-000001",
        f"JE-{ledger.today.year}-000002",
    ]


@pytest.mark.django_db(transaction=True)
def test_the_database_guard_refuses_what_broken_rules_would_let_through(
    ledger, approver, monkeypatch
):
    """With the rule layer switched off, the deferred balance trigger (PostgreSQL) or the
    posting trigger (SQLite) still refuses an unbalanced entry, and the whole batch rolls back."""
    monkeypatch.setattr(rules, "validate_lines", lambda lines: [])
    lopsided = EntryInput(
        ledger.today,
        "lopsided",
        [line(ledger.cash.pk, "D", D(5)), line(ledger.equity.pk, "C", D(4))],
    )
    with pytest.raises(Exception) as refused:
        batch(ledger, approver, entry(ledger, ledger.cash, ledger.equity), lopsided)
    assert "unbalanced" in str(refused.value) or "ledger" in str(refused.value)
    assert not JournalEntry.objects.exists()
    assert AccountBalance.objects.get(account=ledger.cash).debit_total == 0


@pytest.mark.django_db(transaction=True)
def test_a_single_posting_refused_by_a_rule_raises_it_and_writes_nothing(ledger, approver):
    with pytest.raises(RuleViolation) as refused:
        services.journal_entry_record(
            entry_date=ledger.today,
            description="x",
            lines=[line(ledger.expense, "D", D(5)), line(ledger.cash, "C", D(5))],
            actor=approver,
        )
    assert refused.value.code == "account.negative_balance"
    assert not JournalEntry.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="journal_entry").exists()


@pytest.mark.django_db(transaction=True)
def test_a_batch_to_an_edited_cache_pages_at_once(ledger, approver):
    batch(ledger, approver, entry(ledger, ledger.cash, ledger.equity, "100.00"))
    bump_cache(ledger.cash)
    [result] = batch(ledger, approver, entry(ledger, ledger.cash, ledger.equity, "1.00"))
    assert result["status"] == "posted"
    alert = balance_alert()
    assert (alert.state, alert.severity) == ("firing", "critical")
    assert [a["account_id"] for a in alert.details["accounts"]] == [ledger.cash.pk]


def test_a_batch_over_the_limits_is_refused_before_anything_runs(ledger, approver):
    one = {"entry_date": ledger.today, "description": "x", "lines": [line(1, "D", D(1))] * 11}
    with pytest.raises(ValueError, match="at most"):
        services.journal_entries_record_batch(entries=[one] * 1000, actor=approver)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_set_based_and_after_commit_rechecks_side_by_side_raise_no_alert(
    ledger, make_user, settings
):
    """Recorded entries (re-checked inside their transaction) and directly posted drafts
    (re-checked after their commit, which moves the same checkpoints without the balance
    locks) on the same accounts at once: no false mismatch, no alert, books that reconcile."""
    settings.FINANCE_REALTIME_RECHECK = "sync"
    system = make_user("finance_approver")
    services.journal_entry_record(
        entry_date=ledger.today,
        description="float",
        lines=[line(ledger.cash, "D", D("100000.00")), line(ledger.equity, "C", D("100000.00"))],
        actor=system,
    )

    def worker(i):
        rnd = random.Random(i)
        for n in range(8):
            amount = D(rnd.randint(1, 10_000)) / 100
            lines = [line(ledger.expense, "D", amount), line(ledger.cash, "C", amount)]
            if i % 2:  # step by step: a system draft posted, re-checked after its commit
                draft = JournalEntryFactory(
                    entry_date=ledger.today,
                    description=f"d{i}-{n}",
                    created_by=system,
                    source=EntrySource.SYSTEM,
                    lines=lines,
                )
                services.journal_entry_post(entry=draft, actor=system)
            else:
                services.journal_entry_record(
                    entry_date=ledger.today, description=f"r{i}-{n}", lines=lines, actor=system
                )

    errors = run_threads(worker, 4)
    assert not errors, errors[:3]
    assert balance_alert() is None
    assert selectors.balance_mismatches() == []
    assert JournalEntry.objects.filter(status="posted").count() == 1 + 4 * 8


def _refusal(run) -> object:
    """The sorted (code, field) pairs a posting is refused with, or "posted" (rolled back)."""
    try:
        with transaction.atomic():
            violations = run()
            if not violations:
                raise _Posted
            return sorted((v.code, v.field) for v in violations)
    except RuleViolation as exc:
        return sorted((v.code, v.field) for v in exc.violations)
    except _Posted:
        return "posted"


class _Posted(Exception):
    pass


def test_both_paths_refuse_the_same_entries_with_the_same_codes(ledger, approver):
    """Every refusal of the step-by-step path, from the set-based one too (on SQLite both are
    the step-by-step path)."""
    today, cash, sales = ledger.today, ledger.cash.pk, ledger.revenue.pk

    def two(debit, credit, amount, day=today, **extra):
        lines = [line(debit, "D", D(amount), **extra), line(credit, "C", D(amount), **extra)]
        return EntryInput(entry_date=day, description="x", lines=lines)

    ancient, far = today.replace(year=1990), today.replace(year=today.year + 9)
    cases = {
        "no period": two(cash, sales, "1", day=ancient),
        "no period, missing account": two(999_999, sales, "1", day=ancient),
        "in the future": two(cash, sales, "1", day=far),
        "same account": two(cash, cash, "1"),
        "zero": two(cash, sales, "0"),
        "negative": two(cash, sales, "-1"),
        "too precise": two(cash, sales, "1.001"),
        "other currency": two(cash, sales, "1", currency="EUR"),
        "missing account": two(999_999, sales, "1"),
        "overdrawn": two(sales, cash, "1"),
        "too large": two(cash, sales, "1e20"),
        "one line": EntryInput(today, "x", [line(cash, "D", D(1))]),
        "bad side": EntryInput(today, "x", [line(cash, "X", D(1)), line(sales, "C", D(1))]),
        "posts": two(cash, sales, "1"),
    }
    for name, entry in cases.items():
        step = _refusal(lambda e=entry: record_one(e, approver) and [])
        fast = _refusal(
            lambda e=entry: entries_post(entries=[e], actor_id=approver.pk)[0].violations
        )
        assert step == fast, (name, step, fast)


@set_based_only
@pytest.mark.django_db(transaction=True)
def test_a_retry_with_the_same_key_gets_the_first_result_even_when_a_rule_now_refuses(
    ledger, approver, monkeypatch
):
    """The key is claimed with the result (claim_last): a second run with the same key waits on
    the first one's locks, then finds the cash spent. It answers with the first result, as a
    run that claimed its key first would have."""
    services.journal_entry_record(
        entry_date=ledger.today,
        description="fund",
        lines=[line(ledger.cash, "D", D(100)), line(ledger.equity, "C", D(100))],
        actor=approver,
    )
    audit = bulk._SetBased._audit

    def slow_audit(self, accepted, actor):
        if threading.current_thread().name == "first":
            time.sleep(1.0)  # holds the locks: the second run waits behind them
        return audit(self, accepted, actor)

    monkeypatch.setattr(bulk._SetBased, "_audit", slow_audit)
    out = {}

    def spend(name):
        try:
            out[name] = services.journal_entry_record(
                entry_date=ledger.today,
                description="spend",
                lines=[line(ledger.expense, "D", D(100)), line(ledger.cash, "C", D(100))],
                actor=approver,
                idempotency_key="spend-1",
            ).pk
        except Exception as exc:  # noqa: BLE001 - compared below
            out[name] = repr(exc)
        finally:
            connection.close()

    first = threading.Thread(target=spend, args=("first",), name="first")
    first.start()
    time.sleep(0.3)
    second = threading.Thread(target=spend, args=("second",), name="second")
    second.start()
    first.join()
    second.join()
    assert out["first"] == out["second"], out
    assert JournalEntry.objects.count() == 2
