from datetime import timedelta
from decimal import Decimal

import pytest

from finance import reports, services
from finance.exceptions import RuleViolation
from finance.models import (
    AccountBalance,
    EntrySource,
    EntryStatus,
    JournalEntry,
    JournalLine,
)
from tests.conftest import line
from tests.finance.factories import AccountFactory

D = Decimal


def codes(exc: pytest.ExceptionInfo) -> set[str]:
    return {v.code for v in exc.value.violations}


def draft(ledger, clerk, lines, **kwargs):
    return services.journal_entry_create(
        entry_date=kwargs.pop("entry_date", ledger.today),
        description="Draft",
        lines=lines,
        created_by=clerk,
        **kwargs,
    )


def balance(account) -> Decimal:
    return AccountBalance.objects.get(account=account).balance


class TestPostingRules:
    """Each hostile entry is refused with its rule code and writes nothing."""

    @pytest.mark.parametrize(
        ("lines", "code"),
        [
            (lambda lg: [line(lg.cash, "D", D("100.00"))], "entry.too_few_lines"),
            (
                lambda lg: [line(lg.cash, "D", D("100.00")), line(lg.equity, "C", D("99.99"))],
                "entry.unbalanced",
            ),
            (
                lambda lg: [line(lg.cash, "D", D("100.005")), line(lg.equity, "C", D("100.005"))],
                "line.amount_not_quantized",
            ),
            (
                lambda lg: [line(lg.cash, "D", D("0")), line(lg.equity, "C", D("0"))],
                "line.amount_not_positive",
            ),
            (
                lambda lg: [line(lg.cash, "D", D("-5.00")), line(lg.equity, "C", D("-5.00"))],
                "line.amount_not_positive",
            ),
            (
                lambda lg: [
                    line(lg.cash, "D", D("10.00"), currency="EUR"),
                    line(lg.equity_eur, "C", D("10.00")),
                ],
                "line.currency_mismatch",
            ),
            (
                # balanced in total but not per currency
                lambda lg: [
                    line(lg.cash, "D", D("10.00")),
                    line(lg.equity_eur, "C", D("10.00")),
                ],
                "entry.unbalanced",
            ),
            (
                lambda lg: [line(None, "D", D("1.00")), line(lg.cash, "C", D("1.00"))],
                "line.account_missing",
            ),
        ],
    )
    def test_refused_with_code_and_nothing_written(self, ledger, clerk, lines, code):
        with pytest.raises(RuleViolation) as exc:
            draft(ledger, clerk, lines(ledger))
        assert code in codes(exc)
        assert not JournalEntry.objects.exists()
        assert not JournalLine.objects.exists()

    def test_inactive_account_is_refused(self, ledger, clerk):
        services.account_update(account=ledger.expense, is_active=False)
        with pytest.raises(RuleViolation) as exc:
            draft(
                ledger,
                clerk,
                [line(ledger.expense, "D", D("5.00")), line(ledger.cash, "C", D("5.00"))],
            )
        assert codes(exc) == {"line.account_inactive"}

    def test_yen_has_no_minor_unit(self, ledger, clerk):
        jpy = AccountFactory(code="1030", currency="JPY")
        jpy_eq = AccountFactory(code="3030", currency="JPY", type="equity")
        with pytest.raises(RuleViolation) as exc:
            draft(ledger, clerk, [line(jpy, "D", D("100.50")), line(jpy_eq, "C", D("100.50"))])
        assert codes(exc) == {"line.amount_not_quantized"}
        draft(ledger, clerk, [line(jpy, "D", D("100")), line(jpy_eq, "C", D("100"))])

    def test_date_too_far_in_future(self, ledger, clerk, settings):
        settings.LEDGER_MAX_FUTURE_DAYS = 3
        with pytest.raises(RuleViolation) as exc:
            draft(
                ledger,
                clerk,
                [line(ledger.cash, "D", D("1.00")), line(ledger.equity, "C", D("1.00"))],
                entry_date=ledger.today + timedelta(days=4),
            )
        assert "entry.date_in_future" in codes(exc)

    def test_no_period_for_date(self, ledger, clerk):
        with pytest.raises(RuleViolation) as exc:
            draft(
                ledger,
                clerk,
                [line(ledger.cash, "D", D("1.00")), line(ledger.equity, "C", D("1.00"))],
                entry_date=ledger.today.replace(year=ledger.today.year - 5),
            )
        assert codes(exc) == {"period.missing"}

    def test_all_violations_reported_at_once(self, ledger, clerk):
        with pytest.raises(RuleViolation) as exc:
            draft(
                ledger,
                clerk,
                [line(ledger.cash, "D", D("1.001")), line(ledger.equity, "C", D("-2"))],
            )
        assert codes(exc) == {"line.amount_not_quantized", "line.amount_not_positive"}


class TestWorkflow:
    def test_maker_checker_full_flow_numbers_and_balances(self, ledger, clerk, approver):
        entry = draft(
            ledger,
            clerk,
            [line(ledger.cash, "D", D("250.00")), line(ledger.equity, "C", D("250.00"))],
        )
        assert entry.status == EntryStatus.DRAFT and entry.number is None
        entry = services.journal_entry_submit(entry=entry, actor=clerk)
        assert entry.status == EntryStatus.PENDING_APPROVAL
        entry = services.journal_entry_approve(entry=entry, actor=approver)
        assert entry.status == EntryStatus.POSTED
        assert entry.number == 1 and entry.fiscal_year == ledger.today.year
        assert entry.approved_by == approver and entry.posted_at is not None
        assert balance(ledger.cash) == D("250.00")
        assert balance(ledger.equity) == D("250.00")

    def test_creator_cannot_approve_own_entry(self, ledger, make_user):
        both = make_user("finance_clerk", "finance_approver")
        entry = draft(
            ledger, both, [line(ledger.cash, "D", D("9.00")), line(ledger.equity, "C", D("9.00"))]
        )
        services.journal_entry_submit(entry=entry, actor=both)
        with pytest.raises(RuleViolation) as exc:
            services.journal_entry_approve(entry=entry, actor=both)
        assert codes(exc) == {"entry.self_approval"}
        entry.refresh_from_db()
        assert entry.status == EntryStatus.PENDING_APPROVAL and entry.number is None
        assert balance(ledger.cash) == 0

    def test_manual_entry_cannot_be_posted_directly(self, ledger, clerk, approver):
        entry = draft(
            ledger, clerk, [line(ledger.cash, "D", D("9.00")), line(ledger.equity, "C", D("9.00"))]
        )
        with pytest.raises(RuleViolation) as exc:
            services.journal_entry_post(entry=entry, actor=approver)
        assert codes(exc) == {"entry.approval_required"}

    def test_threshold_per_currency_allows_small_direct_postings(
        self, ledger, clerk, approver, settings
    ):
        settings.LEDGER_APPROVAL_THRESHOLDS = {"USD": D("1000"), "*": D("0")}
        small = draft(
            ledger,
            clerk,
            [line(ledger.cash, "D", D("999.99")), line(ledger.equity, "C", D("999.99"))],
        )
        assert services.journal_entry_post(entry=small, actor=approver).status == "posted"
        big = draft(
            ledger,
            clerk,
            [line(ledger.cash, "D", D("1000.00")), line(ledger.equity, "C", D("1000.00"))],
        )
        with pytest.raises(RuleViolation):
            services.journal_entry_post(entry=big, actor=approver)
        eur = draft(
            ledger,
            clerk,
            [line(ledger.bank_eur, "D", D("1.00")), line(ledger.equity_eur, "C", D("1.00"))],
        )
        with pytest.raises(RuleViolation):  # EUR falls back to "*": 0
            services.journal_entry_post(entry=eur, actor=approver)

    def test_numbers_are_gapless_even_after_refused_postings(self, ledger, clerk, approver, post):
        post(ledger.cash, ledger.equity, "10.00")
        # A posting refused at the last step (negative balance) must not burn a number.
        bad = draft(
            ledger,
            clerk,
            [line(ledger.expense, "D", D("50.00")), line(ledger.cash, "C", D("50.00"))],
        )
        services.journal_entry_submit(entry=bad, actor=clerk)
        with pytest.raises(RuleViolation) as exc:
            services.journal_entry_approve(entry=bad, actor=approver)
        assert codes(exc) == {"account.negative_balance"}
        post(ledger.cash, ledger.equity, "20.00")
        numbers = list(
            JournalEntry.objects.filter(number__isnull=False)
            .order_by("number")
            .values_list("number", flat=True)
        )
        assert numbers == [1, 2]
        assert balance(ledger.cash) == D("30.00")

    def test_overdraft_account_may_go_negative(self, ledger, post):
        post(ledger.expense, ledger.overdraft, "75.00")
        assert balance(ledger.overdraft) == D("-75.00")

    def test_closed_period_refuses_posting_and_records_who(
        self, ledger, clerk, approver, admin_user
    ):
        entry = draft(
            ledger, clerk, [line(ledger.cash, "D", D("9.00")), line(ledger.equity, "C", D("9.00"))]
        )
        services.journal_entry_submit(entry=entry, actor=clerk)
        services.journal_entry_reject(entry=entry, actor=approver)  # pending blocks closing
        period = entry.period
        period = services.period_close(period=period, actor=approver)
        assert period.closed_by == approver and period.closed_at is not None
        services.journal_entry_submit
        with pytest.raises(RuleViolation) as exc:
            services.journal_entry_submit(entry=entry, actor=clerk)
        assert codes(exc) == {"period.closed"}
        reopened = services.period_reopen(period=period, actor=admin_user)
        assert reopened.reopened_by == admin_user and reopened.is_open

    def test_period_with_pending_entries_cannot_close(self, ledger, clerk, approver):
        entry = draft(
            ledger, clerk, [line(ledger.cash, "D", D("9.00")), line(ledger.equity, "C", D("9.00"))]
        )
        services.journal_entry_submit(entry=entry, actor=clerk)
        with pytest.raises(RuleViolation) as exc:
            services.period_close(period=entry.period, actor=approver)
        assert codes(exc) == {"period.has_pending_entries"}

    def test_posted_entry_cannot_be_edited_submitted_or_deleted(self, ledger, clerk, post):
        entry = post(ledger.cash, ledger.equity)
        for call in (
            lambda: services.journal_entry_update(entry=entry, actor=clerk, description="x"),
            lambda: services.journal_entry_delete(entry=entry, actor=clerk),
            lambda: services.journal_entry_submit(entry=entry, actor=clerk),
        ):
            with pytest.raises(RuleViolation) as exc:
                call()
            assert codes(exc) == {"entry.invalid_state"}
        entry.refresh_from_db()
        assert entry.description == "Test entry" and entry.status == EntryStatus.POSTED

    def test_reversal_mirrors_lines_and_restores_balances(self, ledger, approver, post):
        original = post(ledger.cash, ledger.equity, "120.00")
        reversal = services.journal_entry_reverse(entry=original, actor=approver)
        original.refresh_from_db()
        assert original.status == EntryStatus.REVERSED
        assert reversal.status == EntryStatus.POSTED and reversal.source == EntrySource.REVERSAL
        assert reversal.reversal_of == original and reversal.number == original.number + 1
        assert [(ln.account_id, ln.side, ln.amount) for ln in reversal.lines.all()] == [
            (ledger.cash.pk, "C", D("120.0000")),
            (ledger.equity.pk, "D", D("120.0000")),
        ]
        assert balance(ledger.cash) == 0 and balance(ledger.equity) == 0
        with pytest.raises(RuleViolation) as exc:
            services.journal_entry_reverse(entry=original, actor=approver)
        assert codes(exc) == {"entry.already_reversed"}

    def test_draft_update_replaces_lines(self, ledger, clerk):
        entry = draft(
            ledger, clerk, [line(ledger.cash, "D", D("9.00")), line(ledger.equity, "C", D("9.00"))]
        )
        services.journal_entry_update(
            entry=entry,
            actor=clerk,
            lines=[line(ledger.expense, "D", D("3.00")), line(ledger.cash, "C", D("3.00"))],
        )
        assert [(ln.account_id, ln.amount) for ln in entry.lines.all()] == [
            (ledger.expense.pk, D("3.0000")),
            (ledger.cash.pk, D("3.0000")),
        ]


class TestAccounts:
    def test_account_with_postings_cannot_change_type_currency_or_be_deleted(self, ledger, post):
        post(ledger.cash, ledger.equity)
        with pytest.raises(RuleViolation) as exc:
            services.account_update(account=ledger.cash, currency="EUR")
        assert codes(exc) == {"account.has_postings"}
        with pytest.raises(RuleViolation):
            services.account_update(account=ledger.cash, type="expense")
        with pytest.raises(RuleViolation):
            services.account_delete(account=ledger.cash)
        renamed = services.account_update(account=ledger.cash, name="Main bank")
        assert renamed.name == "Main bank"

    def test_unused_account_can_be_deleted(self, ledger):
        services.account_delete(account=ledger.overdraft)
        assert not type(ledger.overdraft).objects.filter(pk=ledger.overdraft.pk).exists()

    def test_parent_must_match_and_not_loop(self, ledger):
        child = AccountFactory(code="1001", parent=ledger.cash)
        with pytest.raises(RuleViolation):
            services.account_update(account=ledger.cash, parent=child)
        with pytest.raises(RuleViolation):
            AccountFactory(code="1002", parent=ledger.revenue)


class TestReports:
    def test_trial_balance_zero_per_currency_and_as_of(self, ledger, post):
        post(ledger.cash, ledger.equity, "1000.00", entry_date=ledger.today - timedelta(days=3))
        post(ledger.expense, ledger.cash, "250.00")
        post(ledger.bank_eur, ledger.equity_eur, "40.00")
        tb = reports.trial_balance()
        assert tb.is_balanced
        assert tb.totals["USD"] == {"debit": D("1250.00"), "credit": D("1250.00")}
        assert tb.totals["EUR"] == {"debit": D("40.00"), "credit": D("40.00")}
        earlier = reports.trial_balance(as_of=ledger.today - timedelta(days=1))
        assert earlier.is_balanced
        assert earlier.totals["USD"]["debit"] == D("1000.00")
        assert reports.account_balance(
            account=ledger.cash, as_of=ledger.today - timedelta(days=1)
        ).balance == D("1000.00")

    def test_statement_running_balance(self, ledger, post):
        post(ledger.cash, ledger.equity, "100.00", entry_date=ledger.today - timedelta(days=2))
        post(ledger.expense, ledger.cash, "30.00", entry_date=ledger.today - timedelta(days=1))
        post(ledger.cash, ledger.revenue, "5.50")
        opening, lines = reports.account_statement(account=ledger.cash)
        assert opening == 0
        assert [ln.running_balance for ln in lines] == [D("100"), D("70"), D("75.5")]
        opening, lines = reports.account_statement(
            account=ledger.cash, date_from=ledger.today - timedelta(days=1)
        )
        assert opening == D("100.00")
        assert [ln.running_balance for ln in lines] == [D("70"), D("75.5")]
