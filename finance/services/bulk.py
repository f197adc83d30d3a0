"""Set-based posting: many entries recorded and posted in a fixed number of statements.

`entries_post` records and posts a list of entries inside the caller's transaction and returns
one result per entry: posted (with its number) or refused (with the rule violations, exactly as
the one-at-a-time services would raise them). An entry is all-or-nothing: a refused one writes
nothing, and the others still post. The rows it writes are the ones `journal_entry_record`
writes one entry at a time (the draft, its lines, both history rows of the entry and one per
line, the balances, the number, the two audit events), so the two paths can be compared row by
row (tests/finance/test_bulk_posting.py).

How it stays fast, on PostgreSQL (`connection.features.has_writable_ctes`):

1. Lock the entries' fiscal periods in id order, reading the actor with them (one statement).
2. Lock the years' sequence rows, then the touched balance rows in account id order, reading
   their accounts and re-check checkpoints with them (one statement when there is one year):
   the ledger's lock order (period -> sequence -> balances), as posting.py takes it.
3. Judge every entry in Python under those locks with the rule module (finance/rules.py):
   date and lines, maker-checker, then the running balances and totals entry after entry.
4. Write the accepted entries as drafts with their lines, history rows, balances and the
   sequence in ONE statement (data-modifying CTEs over UNNEST arrays), then mark them posted
   with their history rows in a second: the database guards see the same draft-then-post
   order as always (lines cannot be added to a posted entry).
5. The real-time re-check (finance/recheck.py, FINANCE_REALTIME_RECHECK="sync") runs inside
   the transaction in one statement: under the balance locks nothing else can move these
   accounts, so cache and lines are compared as they will commit, and the checkpoints move on.
   A mismatch still pages only after the commit, through the re-check's own confirmation.
6. The audit events are held as always (audit_record) and appended at commit.

Elsewhere (SQLite) `entries_post` records the entries one by one through the same service the
single posting uses, each in a savepoint.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone
from simple_history.models import HistoricalRecords

from audit.services import audit_record
from config.db.features import project_features
from finance import rules
from finance.exceptions import RuleViolation, Violation
from finance.models import (
    Account,
    AccountBalance,
    EntrySequence,
    EntrySource,
    EntryStatus,
    FiscalPeriod,
    JournalEntry,
    Side,
)
from finance.recheck import recheck_after_commit, recheck_on_commit
from finance.rules import LineInput
from finance.selectors import RECHECK_RANGE_LIMIT
from finance.services.entries import do_draft_create
from finance.services.lines import entry_meta, line_inputs
from finance.services.posting import Draft, post_entry

__all__ = ["EntryInput", "EntryResult", "entries_post"]


@dataclass(frozen=True)
class EntryInput:
    """One entry to record and post: lines as dicts with account (an id), side, amount
    (Decimal), currency and description, as `journal_entry_record` takes them."""

    entry_date: date
    description: str
    lines: Sequence[Mapping[str, Any]]
    reference: str = ""
    source: str = EntrySource.SYSTEM


@dataclass
class EntryResult:
    """Posted (`entry` set) or refused (`violations` set)."""

    index: int
    entry: JournalEntry | None = None
    violations: list[Violation] = field(default_factory=list)


def entries_post(*, entries: Sequence[EntryInput], actor_id: int) -> list[EntryResult]:
    """Record and post `entries` inside the caller's transaction; one result per entry.

    The actor is given by id: the set-based path reads the user with its first lock, and a
    dead letter's payload holds only the id. A missing user raises User.DoesNotExist.
    """
    if not entries:
        return []
    if set_based_posting():
        return _SetBased(entries, actor_id).run()
    actor = get_user_model().objects.get(pk=actor_id)
    return [_one(index, entry, actor) for index, entry in enumerate(entries)]


def set_based_posting() -> bool:
    """The database can post set-based (PostgreSQL: data-modifying CTEs over arrays)."""
    return project_features(connection).has_writable_ctes


def _one(index: int, entry: EntryInput, actor: User) -> EntryResult:
    """The generic path: the single posting's own steps, in a savepoint of their own."""
    try:
        with transaction.atomic():
            posted = record_one(entry, actor)
    except RuleViolation as exc:
        return EntryResult(index, violations=list(exc.violations))
    return EntryResult(index, entry=posted)


def record_one(entry: EntryInput, actor: User) -> JournalEntry:
    """Record and post one entry step by step (posting.py), in the caller's transaction: the
    generic path, and the reference the set-based one is compared with."""
    inputs = line_inputs(entry.lines)
    period = rules.check_entry(entry_date=entry.entry_date, lines=inputs)
    draft = do_draft_create(
        entry_date=entry.entry_date,
        period=period,
        description=entry.description,
        reference=entry.reference,
        source=entry.source,
        inputs=inputs,
        created_by=actor,
    )
    return post_entry(Draft(entry=draft, inputs=inputs), actor, approved=False)


# The set-based path (PostgreSQL) ---------------------------------------------------------


def _history_user_id() -> int | None:
    """Who django-simple-history would name: the request's user (HistoryRequestMiddleware)."""
    request = getattr(HistoricalRecords.context, "request", None)
    user = getattr(request, "user", None)
    return user.pk if user is not None and user.is_authenticated else None


@dataclass
class _Judged:
    index: int
    entry: EntryInput
    period: FiscalPeriod
    inputs: list[LineInput]
    number: int = 0
    id: int = 0


class _SetBased:
    def __init__(self, entries: Sequence[EntryInput], actor_id: int) -> None:
        self.entries = entries
        self.actor_id = actor_id
        self.results = [EntryResult(i) for i in range(len(entries))]
        self.now = timezone.now()

    def run(self) -> list[EntryResult]:
        accounts = sorted(
            {a for e in self.entries for ln in e.lines if (a := _account_id(ln)) is not None}
        )
        locked = self._lock_in_one(accounts)
        by_entry: dict[int, FiscalPeriod | None]
        if locked is not None:
            actor, periods, last, ledger = locked
            by_entry = dict.fromkeys(range(len(self.entries)), periods[0])
        else:
            actor, found = self._lock_periods()
            by_entry = {i: rules_period(found, e.entry_date) for i, e in enumerate(self.entries)}
            years = sorted({p.fiscal_year for p in by_entry.values() if p is not None})
            last, ledger = self._lock_ledger(years, accounts)
        accepted = self._judge(by_entry, last, ledger)
        if accepted:
            self._write(accepted, ledger)
            self._post(accepted)
            self._recheck(accepted, ledger)
            self._audit(accepted, actor)
        return self.results

    # 1. periods and actor

    def _lock_in_one(
        self, accounts: list[int]
    ) -> tuple[User, list[FiscalPeriod], dict[int, int], dict[int, "_Ledger"]] | None:
        """The usual case in ONE statement: one period covers every entry's date, and every
        account has its balance row. The period, its year's sequence row, then the balance
        rows in account order are locked (each row of the join locks them in that order).
        None when it is not so: the general path then locks step by step."""
        if not accounts:
            return None
        user_model, users, username = _users()
        dates = [e.entry_date for e in self.entries]
        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT u.{username}, {_YEARS}, p.id, p.name, p.fiscal_year, p.start_date,
                           p.end_date, p.status, s.last_number, {_BALANCE_COLUMNS}
                      FROM {users} u, "finance_fiscalperiod" p, "finance_entrysequence" s,
                           {_BALANCES}
                       AND u.id = %s AND p.start_date <= %s AND p.end_date >= %s
                       AND s.fiscal_year = p.fiscal_year
                     ORDER BY b.account_id
                       FOR UPDATE OF p, s, b""",  # noqa: S608 - names from the models
                [accounts, self.actor_id, min(dates), max(dates)],
            )
            rows = cursor.fetchall()
        if len(rows) != len(accounts):
            return None
        first = rows[0]
        actor = user_model(pk=self.actor_id, **{user_model.USERNAME_FIELD: first[0]})
        self.all_years = _years(first[1])
        period = _period(first)
        ledger = {r[9]: _Ledger.of(r[9:]) for r in rows}
        return actor, [period], {period.fiscal_year: first[8]}, ledger

    def _lock_periods(self) -> tuple[User, list[FiscalPeriod]]:
        """Lock the periods that cover the entries' dates, in id order, reading the actor and
        every year's last entry number with them."""
        user_model, users, name = _users()
        dates = sorted({e.entry_date for e in self.entries})
        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT u.{name}, {_YEARS}, p.id, p.name, p.fiscal_year, p.start_date,
                           p.end_date, p.status
                      FROM {users} u, "finance_fiscalperiod" p
                     WHERE u.id = %s
                       AND EXISTS (SELECT 1 FROM unnest(%s::date[]) d
                                    WHERE d BETWEEN p.start_date AND p.end_date)
                     ORDER BY p.id
                       FOR UPDATE OF p""",  # noqa: S608 - table and column names from the model
                [self.actor_id, dates],
            )
            rows = cursor.fetchall()
            if not rows:  # no period covers any of the dates: the actor alone
                cursor.execute(
                    f"SELECT u.{name}, {_YEARS} FROM {users} u WHERE u.id = %s",  # noqa: S608
                    [self.actor_id],
                )
                rows = cursor.fetchall()
        if not rows:
            raise user_model.DoesNotExist(f"user #{self.actor_id} does not exist")
        username, years = rows[0][:2]
        actor = user_model(pk=self.actor_id, **{user_model.USERNAME_FIELD: username})
        self.all_years = _years(years)
        return actor, [_period(row) for row in rows if len(row) > 2]

    # 2. sequences and balances

    def _lock_ledger(
        self, years: list[int], accounts: list[int]
    ) -> tuple[dict[int, int], dict[int, "_Ledger"]]:
        """The years' last numbers and the touched accounts' locked balance rows."""
        if not years:  # no entry has a period: nothing posts, but lines are judged on accounts
            return {}, self._read_accounts(accounts)
        for attempt in range(2):
            last, ledger = self._read_locked(years, accounts)
            missing_years = [y for y in years if y not in last]
            missing_rows = [a for a in accounts if a not in ledger]
            if attempt or not (missing_years or missing_rows):
                return last, ledger
            # Rare: a year's first posting, or an account without its balance row. Made here
            # (committed with the posting), then locked like the others.
            for year in missing_years:
                EntrySequence.objects.get_or_create(fiscal_year=year)
            existing = Account.objects.filter(pk__in=missing_rows).values_list("pk", flat=True)
            for account_id in existing:
                AccountBalance.objects.get_or_create(account_id=account_id)
        raise AssertionError("unreachable")

    def _read_accounts(self, accounts: list[int]) -> dict[int, "_Ledger"]:
        """The accounts as they are, without a lock (nothing will be written): every line is
        judged on its real account, as the step-by-step path judges it."""
        if not accounts:
            return {}
        with connection.cursor() as cursor:
            cursor.execute(
                """SELECT a.id, coalesce(b.debit_total, 0), coalesce(b.credit_total, 0), a.code,
                          a.name, a.type, a.currency, a.is_active, a.allow_negative, '[]'
                     FROM "finance_account" a
                     LEFT JOIN "finance_accountbalance" b ON b.account_id = a.id
                    WHERE a.id = ANY(%s::bigint[])""",
                [accounts],
            )
            return {row[0]: _Ledger.of(row) for row in cursor.fetchall()}

    def _read_locked(
        self, years: list[int], accounts: list[int]
    ) -> tuple[dict[int, int], dict[int, "_Ledger"]]:
        """Lock the years' sequence rows, then the balance rows in account order (the ledger's
        lock order), reading each balance's account and re-check checkpoints with it."""
        columns, balances = _BALANCE_COLUMNS, _BALANCES
        with connection.cursor() as cursor:
            if len(years) == 1 and accounts:
                # One statement: each row of the join locks the sequence, then its balance row.
                cursor.execute(
                    f"""SELECT s.last_number, {columns}
                          FROM "finance_entrysequence" s, {balances} AND s.fiscal_year = %s
                         ORDER BY b.account_id
                           FOR UPDATE OF s, b""",  # noqa: S608 - no user input in the SQL
                    [accounts, years[0]],
                )
                rows = cursor.fetchall()
                if rows:
                    return {years[0]: rows[0][0]}, {r[1]: _Ledger.of(r[1:]) for r in rows}
            cursor.execute(
                'SELECT fiscal_year, last_number FROM "finance_entrysequence"'
                " WHERE fiscal_year = ANY(%s::int[]) ORDER BY fiscal_year FOR UPDATE",
                [years],
            )
            last = dict(cursor.fetchall())
            cursor.execute(
                f"SELECT {columns} FROM {balances} ORDER BY b.account_id FOR UPDATE OF b",  # noqa: S608
                [accounts],
            )
            return last, {r[0]: _Ledger.of(r) for r in cursor.fetchall()}

    # 3. judge

    def _judge(
        self,
        by_entry: dict[int, FiscalPeriod | None],
        last: dict[int, int],
        ledger: dict[int, "_Ledger"],
    ) -> list[_Judged]:
        """Each entry against the rules in the single posting's order (date and lines, then
        maker-checker, then the balances it would leave), on the running totals of the entries
        accepted before it."""
        numbers = dict(last)
        accepted = []
        for index, entry in enumerate(self.entries):
            period = by_entry[index]
            inputs = [_line_input(ln, ledger) for ln in entry.lines]
            found = rules.validate_date(entry.entry_date, period) + rules.validate_lines(inputs)
            if not found and rules.needs_approval(source=entry.source, lines=inputs):
                found = [rules.violation("entry.approval_required")]
            if not found:
                found = _projected(inputs, ledger)
            if found:
                self.results[index].violations = found
                continue
            assert period is not None  # validate_date reports a missing period
            _apply(inputs, ledger)
            numbers[period.fiscal_year] += 1
            accepted.append(
                _Judged(index, entry, period, inputs, number=numbers[period.fiscal_year])
            )
        self.numbers = numbers
        return accepted

    # 4. write and post

    def _write(self, accepted: list[_Judged], ledger: dict[int, "_Ledger"]) -> None:
        lines = [
            (k, n, line.account.pk, line.side, line.amount, _currency(line), line.description)
            for k, judged in enumerate(accepted)
            for n, line in enumerate(judged.inputs, start=1)
            if line.account is not None
        ]
        touched = sorted({line[2] for line in lines})
        years = sorted({j.period.fiscal_year for j in accepted})
        params: dict[str, Any] = {
            "actor": self.actor_id,
            "now": self.now,
            "huser": _history_user_id(),
            "e_idx": list(range(len(accepted))),
            "e_date": [j.entry.entry_date for j in accepted],
            "e_period": [j.period.pk for j in accepted],
            "e_description": [j.entry.description for j in accepted],
            "e_reference": [j.entry.reference for j in accepted],
            "e_source": [j.entry.source for j in accepted],
            **_columns("l", ["idx", "no", "account", "side", "amount", "currency", "text"], lines),
            "b_account": touched,
            "b_debit": [ledger[a].debit for a in touched],
            "b_credit": [ledger[a].credit for a in touched],
            "s_year": years,
            "s_number": [self.numbers[y] for y in years],
        }
        with connection.cursor() as cursor:
            cursor.execute(WRITE_SQL, params)
            ids = dict(cursor.fetchall())
        for k, judged in enumerate(accepted):
            judged.id = ids[k]

    def _post(self, accepted: list[_Judged]) -> None:
        params: dict[str, Any] = {
            "actor": self.actor_id,
            "now": self.now,
            "huser": _history_user_id(),
            "id": [j.id for j in accepted],
            "year": [j.period.fiscal_year for j in accepted],
            "number": [j.number for j in accepted],
        }
        with connection.cursor() as cursor:
            cursor.execute(POST_SQL, params)
        for judged in accepted:
            self.results[judged.index].entry = self._entry(judged)

    def _entry(self, judged: _Judged) -> JournalEntry:
        """The posted entry, as the step-by-step path returns it."""
        return JournalEntry(
            pk=judged.id,
            entry_date=judged.entry.entry_date,
            period_id=judged.period.pk,
            description=judged.entry.description,
            reference=judged.entry.reference,
            source=judged.entry.source,
            status=EntryStatus.POSTED,
            fiscal_year=judged.period.fiscal_year,
            number=judged.number,
            created_by_id=self.actor_id,
            created_at=self.now,
            posted_by_id=self.actor_id,
            posted_at=self.now,
        )

    # 5. the re-check

    def _recheck(self, accepted: list[_Judged], ledger: dict[int, "_Ledger"]) -> None:
        touched = sorted({ln.account.pk for j in accepted for ln in j.inputs if ln.account})
        mode = settings.FINANCE_REALTIME_RECHECK
        if mode != "sync" or not self._recheck_is_short(touched, ledger):
            recheck_on_commit(touched)  # a worker's job, off, or a long way behind: as always
            return
        sql, params = _recheck_sql(touched, ledger, {**self.all_years, **self.numbers})
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, self.now])
            mismatched = [row[0] for row in cursor.fetchall()]
        if mismatched:  # confirmed against every line, and paged, once this commits
            recheck_after_commit(mismatched)

    def _recheck_is_short(self, touched: list[int], ledger: dict[int, "_Ledger"]) -> bool:
        """Every (account, year) has at most RECHECK_RANGE_LIMIT entries since its checkpoint,
        so the in-transaction re-check reads a short range of entries, never a long history."""
        return all(
            number - ledger[a].through.get(year, 0) <= RECHECK_RANGE_LIMIT
            for a in touched
            for year, number in {**self.all_years, **self.numbers}.items()
        )

    # 6. the trail

    def _audit(self, accepted: list[_Judged], actor: User) -> None:
        for judged in accepted:
            meta = entry_meta(judged.entry, judged.inputs)
            audit_record(  # as for the draft's own row: JournalEntry's label and str()
                action="journal_entry.created",
                object_type=JournalEntry._meta.label_lower,
                object_id=judged.id,
                object_repr=f"{EntryStatus.DRAFT.label} #{judged.id}",
                actor=actor,
                metadata=meta,
            )
            entry = self.results[judged.index].entry
            assert entry is not None
            audit_record(
                action="journal_entry.posted",
                obj=entry,
                actor=actor,
                changes={
                    "status": [EntryStatus.DRAFT, entry.status],
                    "number": [None, entry.display_number],
                },
                metadata={
                    **meta,
                    "number": entry.display_number,
                    "fiscal_year": entry.fiscal_year,
                    "approved": False,
                    "reversal_of": None,
                },
            )


@dataclass
class _Ledger:
    """A locked balance row with its account, running through the batch."""

    account: Account
    debit: Decimal
    credit: Decimal
    through: dict[int, int]  # fiscal year -> the re-check checkpoint's last entry number

    @classmethod
    def of(cls, row: Sequence[Any]) -> "_Ledger":
        account_id, debit, credit, code, name, type_, currency, active, negative, points = row
        account = Account(
            pk=account_id,
            code=code,
            name=name,
            type=type_,
            currency=currency,
            is_active=active,
            allow_negative=negative,
        )
        points = json.loads(points) if isinstance(points, str) else points
        return cls(account, debit, credit, {int(y): int(n) for y, n in points})

    def balance(self) -> Decimal:
        if self.account.is_debit_normal:
            return self.debit - self.credit
        return self.credit - self.debit


def _users() -> tuple[Any, str, str]:
    """The user model, its table and its username column, for the lock statements."""
    user_model = get_user_model()
    field = user_model._meta.get_field(user_model.USERNAME_FIELD)
    return user_model, user_model._meta.db_table, str(getattr(field, "column", "username"))


def _period(row: Sequence[Any]) -> FiscalPeriod:
    """A locked period from a lock statement's row: its columns 2 to 7."""
    pid, name, year, start, end, status = row[2:8]
    return FiscalPeriod(
        pk=pid, name=name, fiscal_year=year, start_date=start, end_date=end, status=status
    )


def _years(value: Any) -> dict[int, int]:
    """Every year's last entry number, read without a lock: how far behind the re-check
    checkpoints are (a cost estimate only)."""
    years = json.loads(value) if isinstance(value, str) else value or {}
    return {int(y): int(n) for y, n in years.items()}


def rules_period(periods: Sequence[FiscalPeriod], day: date) -> FiscalPeriod | None:
    """`rules.period_for` over the locked periods: the first by start date that covers `day`."""
    covering = [p for p in periods if p.start_date <= day <= p.end_date]
    return min(covering, key=lambda p: p.start_date) if covering else None


def _account_id(line: Mapping[str, Any]) -> int | None:
    account = line.get("account")
    if isinstance(account, Account):
        return account.pk
    return account if isinstance(account, int) and not isinstance(account, bool) else None


def _line_input(line: Mapping[str, Any], ledger: dict[int, _Ledger]) -> LineInput:
    account_id = _account_id(line)
    held = ledger.get(account_id) if account_id is not None else None
    return LineInput(
        account=held.account if held else None,
        side=line.get("side", ""),
        amount=line["amount"],
        currency=line.get("currency") or None,
        description=line.get("description", ""),
    )


def _currency(line: LineInput) -> str:
    currency = line.effective_currency
    assert currency is not None  # judged
    return currency


def _deltas(inputs: Sequence[LineInput]) -> dict[int, tuple[Decimal, Decimal]]:
    deltas: dict[int, tuple[Decimal, Decimal]] = {}
    for line in inputs:
        assert line.account is not None  # judged
        debit, credit = deltas.get(line.account.pk, (Decimal(0), Decimal(0)))
        if line.side == Side.DEBIT:
            debit += line.amount
        else:
            credit += line.amount
        deltas[line.account.pk] = (debit, credit)
    return deltas


def _projected(inputs: Sequence[LineInput], ledger: dict[int, _Ledger]) -> list[Violation]:
    """posting.check_balances on the running totals: what this entry would leave."""
    after = []
    for account_id, (debit, credit) in sorted(_deltas(inputs).items()):
        held = ledger[account_id]
        after.append(_Ledger(held.account, held.debit + debit, held.credit + credit, {}))
    return rules.validate_projected_balances(
        [(a.account, a.balance()) for a in after]
    ) + rules.validate_projected_totals((a.account, a.debit, a.credit) for a in after)


def _apply(inputs: Sequence[LineInput], ledger: dict[int, _Ledger]) -> None:
    for account_id, (debit, credit) in _deltas(inputs).items():
        ledger[account_id].debit += debit
        ledger[account_id].credit += credit


def _columns(prefix: str, names: list[str], rows: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
    """Rows as one list per column (UNNEST's arrays), named prefix_name."""
    columns: list[list[Any]] = [[] for _ in names]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return {f"{prefix}_{name}": column for name, column in zip(names, columns, strict=True)}


# The statements ---------------------------------------------------------------------------

# A balance row with its account and its re-check checkpoints (fiscal year, through number).
_BALANCE_COLUMNS = """b.account_id, b.debit_total, b.credit_total, a.code, a.name, a.type,
    a.currency, a.is_active, a.allow_negative,
    (SELECT coalesce(json_agg(json_build_array(c.fiscal_year, c.through_number)), '[]')
       FROM "finance_balancecheckpoint" c WHERE c.account_id = b.account_id)"""
_BALANCES = """"finance_accountbalance" b JOIN "finance_account" a ON a.id = b.account_id
    WHERE b.account_id = ANY(%s::bigint[])"""
# Every year's last entry number.
_YEARS = '(SELECT json_object_agg(fiscal_year, last_number) FROM "finance_entrysequence")'

_ENTRY_HISTORY = """INSERT INTO "finance_historicaljournalentry" (
        id, entry_date, description, reference, source, status, fiscal_year, number,
        created_at, submitted_at, approved_at, posted_at, history_date, history_change_reason,
        history_type, approved_by_id, created_by_id, history_user_id, period_id, posted_by_id,
        submitted_by_id, reversal_of_id)
    SELECT id, entry_date, description, reference, source, status, fiscal_year, number,
           created_at, submitted_at, approved_at, posted_at, %(now)s, NULL,
           {kind}, approved_by_id, created_by_id, %(huser)s, period_id, posted_by_id,
           submitted_by_id, reversal_of_id
      FROM e"""

# The drafts, their lines, both with history, the balances and the sequences: one statement.
# Entry ids are drawn first (MATERIALIZED: once per entry) so that lines can name them.
WRITE_SQL = f"""
WITH x AS MATERIALIZED (
    SELECT x.*, nextval(pg_get_serial_sequence('finance_journalentry', 'id')) AS id
      FROM unnest(%(e_idx)s::int[], %(e_date)s::date[], %(e_period)s::bigint[],
                  %(e_description)s::text[], %(e_reference)s::text[], %(e_source)s::text[])
           AS x(idx, entry_date, period_id, description, reference, source)
), e AS (
    INSERT INTO "finance_journalentry" (id, entry_date, period_id, description, reference,
                                      source, status, created_by_id, created_at)
    SELECT id, entry_date, period_id, description, reference, source, 'draft', %(actor)s,
           %(now)s
      FROM x
    RETURNING *
), eh AS (
    {_ENTRY_HISTORY.format(kind="'+'")}
), l AS (
    INSERT INTO "finance_journalline" (entry_id, line_no, account_id, side, amount, currency,
                                     description)
    SELECT x.id, y.no, y.account, y.side, y.amount, y.currency, y.text
      FROM unnest(%(l_idx)s::int[], %(l_no)s::smallint[], %(l_account)s::bigint[],
                  %(l_side)s::text[], %(l_amount)s::numeric[], %(l_currency)s::text[],
                  %(l_text)s::text[]) AS y(idx, no, account, side, amount, currency, text)
      JOIN x ON x.idx = y.idx
    RETURNING *
), lh AS (
    INSERT INTO "finance_historicaljournalline" (id, line_no, side, amount, currency,
        description, history_date, history_change_reason, history_type, account_id,
        history_user_id, entry_id)
    SELECT id, line_no, side, amount, currency, description, %(now)s, NULL, '+', account_id,
           %(huser)s, entry_id
      FROM l
), b AS (
    UPDATE "finance_accountbalance" b
       SET debit_total = z.debit, credit_total = z.credit, updated_at = %(now)s
      FROM unnest(%(b_account)s::bigint[], %(b_debit)s::numeric[], %(b_credit)s::numeric[])
           AS z(account_id, debit, credit)
     WHERE b.account_id = z.account_id
), s AS (
    UPDATE "finance_entrysequence" s SET last_number = z.number
      FROM unnest(%(s_year)s::int[], %(s_number)s::int[]) AS z(year, number)
     WHERE s.fiscal_year = z.year
)
SELECT idx, id FROM x"""  # noqa: S608 - constants only

# Number and post the drafts, with the entries' second history rows.
POST_SQL = f"""
WITH z AS (
    SELECT * FROM unnest(%(id)s::bigint[], %(year)s::int[], %(number)s::int[])
           AS z(id, year, number)
), e AS (
    UPDATE "finance_journalentry" e
       SET status = 'posted', fiscal_year = z.year, number = z.number,
           posted_by_id = %(actor)s, posted_at = %(now)s
      FROM z
     WHERE e.id = z.id
    RETURNING e.*
)
{_ENTRY_HISTORY.format(kind="'~'")}"""  # noqa: S608 - constants only

# The real-time re-check of the touched accounts (finance/recheck.py), inside the posting:
# cached totals against each year's checkpoint plus the lines of the entries numbered since,
# then the checkpoints of the accounts that match moved on. Returns the accounts that differ.
# Each (account, year) reads its own short range of the (fiscal_year, number) index, with the
# bounds written in (as selectors.balance_recheck does), so that the planner sees a range of a
# few entries rather than a parameter: a generic plan read every line of a busy account. The
# checkpoint is read again in the same statement: an after-commit re-check elsewhere may have
# moved it since the lock statement read it, and nothing may be counted twice.
_SINCE_SQL = """SELECT %s, %s,
       sum(CASE WHEN l.side = 'D' THEN l.amount ELSE 0 END),
       sum(CASE WHEN l.side = 'C' THEN l.amount ELSE 0 END)
  FROM "finance_journalentry" e
  JOIN "finance_journalline" l ON l.entry_id = e.id
 WHERE e.fiscal_year = %s AND e.number > %s AND e.status IN ('posted', 'reversed')
   AND e.number > (SELECT coalesce(max(c.through_number), 0) FROM "finance_balancecheckpoint" c
                    WHERE c.account_id = %s AND c.fiscal_year = %s)
   AND l.account_id = %s"""

_RECHECK_SQL = """
WITH pairs(account_id, fiscal_year) AS (VALUES {pairs}),
since(account_id, fiscal_year, debit, credit) AS ({since}),
totals AS (
    SELECT p.account_id, p.fiscal_year, s.last_number,
           coalesce(c.through_number, 0) AS through,
           coalesce(c.debit_total, 0) + coalesce(n.debit, 0) AS debit,
           coalesce(c.credit_total, 0) + coalesce(n.credit, 0) AS credit
      FROM pairs p
      JOIN "finance_entrysequence" s ON s.fiscal_year = p.fiscal_year
      LEFT JOIN "finance_balancecheckpoint" c
        ON c.account_id = p.account_id AND c.fiscal_year = p.fiscal_year
      LEFT JOIN since n ON n.account_id = p.account_id AND n.fiscal_year = p.fiscal_year
), compared AS (
    SELECT t.account_id,
           b.debit_total IS NOT DISTINCT FROM sum(t.debit)
           AND b.credit_total IS NOT DISTINCT FROM sum(t.credit) AS ok
      FROM totals t
      LEFT JOIN "finance_accountbalance" b ON b.account_id = t.account_id
     GROUP BY t.account_id, b.debit_total, b.credit_total
), moved AS (
    INSERT INTO "finance_balancecheckpoint" (account_id, fiscal_year, through_number,
                                             debit_total, credit_total, verified_at)
    SELECT t.account_id, t.fiscal_year, t.last_number, t.debit, t.credit, %s
      FROM totals t JOIN compared USING (account_id)
     WHERE compared.ok AND t.last_number > t.through
    ON CONFLICT (account_id, fiscal_year) DO UPDATE
       SET through_number = EXCLUDED.through_number, debit_total = EXCLUDED.debit_total,
           credit_total = EXCLUDED.credit_total, verified_at = EXCLUDED.verified_at
     WHERE "finance_balancecheckpoint".through_number < EXCLUDED.through_number
)
SELECT account_id FROM compared WHERE NOT ok"""


def _recheck_sql(
    touched: list[int], ledger: dict[int, _Ledger], last: dict[int, int]
) -> tuple[str, list[Any]]:
    """The re-check statement for the touched accounts over every fiscal year, and its
    parameters (the time of the checkpoints goes last)."""
    pairs, params, since = [], [], []
    for account_id in touched:
        for year in sorted(last):
            pairs.append("(%s::bigint, %s::int)")
            params += [account_id, year]
    for account_id in touched:
        for year, number in sorted(last.items()):
            through = ledger[account_id].through.get(year, 0)
            if number > through:
                since.append(_SINCE_SQL)
                params += [account_id, year, year, through, account_id, year, account_id]
    if not since:  # nothing numbered since any checkpoint: an empty set of the right shape
        since.append("SELECT NULL::bigint, NULL::int, NULL::numeric, NULL::numeric WHERE false")
    sql = _RECHECK_SQL.format(pairs=", ".join(pairs), since=" UNION ALL ".join(since))
    return sql, params
