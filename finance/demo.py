"""The demo's books (config/demo.py, `manage.py seed_demo`): Northwind Supplies Ltd, a chart
of accounts, monthly periods and the context's days of postings, ending today.

A year that looks like one: invoices with their cost of goods (inventory restocked by the
weekly bills, and a sale never costs more stock than there is), customers paying 2 to 6 weeks
later, suppliers paid 4 weeks after their bill, monthly rent, payroll (its withholdings paid
over the next month), sales tax remitted, loan interest and depreciation. Every ledger row
goes through the services: system postings (invoices, receipts, bank debits) by the day's
batch (`journal_entries_record_batch`, one transaction a day), manual entries by the clerk,
approved by the approver (maker-checker). Past periods are closed through `period_close`
(which runs the financial checks first) a week after they end, except last month and this
one; a few entries are left waiting for approval, and one draft.

Where the time goes (365 days on SQLite, about 2,000 entries): the postings, each through
the transaction manager with its audit events and real-time balance re-check (batches save
the per-entry commit); the twelve period closes each run the financial checks over the
whole ledger so far."""

import calendar
import random
from datetime import date, timedelta
from decimal import Decimal

from config.demo import DemoContext, DemoHistory
from finance import services
from finance.models import Account, AccountType, EntrySource, FiscalPeriod, JournalEntry
from finance.money import ZERO

A, L, E, INC, X = (
    AccountType.ASSET,
    AccountType.LIABILITY,
    AccountType.EQUITY,
    AccountType.INCOME,
    AccountType.EXPENSE,
)
CHART: list[tuple[str, str, str, str, dict[str, bool]]] = [
    # code, name, type, currency, flags
    ("1000", "Cash at bank", A, "USD", {}),
    ("1010", "Petty cash", A, "USD", {}),
    ("1020", "Bank account (EUR)", A, "EUR", {}),
    ("1100", "Accounts receivable", A, "USD", {"is_control": True}),
    ("1200", "Inventory", A, "USD", {}),
    ("1500", "Equipment", A, "USD", {}),
    ("1510", "Accumulated depreciation", A, "USD", {"allow_negative": True}),
    ("2000", "Accounts payable", L, "USD", {"is_control": True}),
    ("2100", "Accrued liabilities", L, "USD", {}),
    ("2200", "Sales tax payable", L, "USD", {}),
    ("2300", "Payroll liabilities", L, "USD", {}),
    ("2500", "Bank loan", L, "USD", {}),
    ("3000", "Owner's capital", E, "USD", {}),
    ("3010", "Owner's capital (EUR)", E, "EUR", {}),
    ("3100", "Retained earnings", E, "USD", {}),
    ("4000", "Product sales", INC, "USD", {}),
    ("4100", "Service revenue", INC, "USD", {}),
    ("4900", "Interest income", INC, "USD", {}),
    ("5000", "Cost of goods sold", X, "USD", {}),
    ("6000", "Salaries", X, "USD", {}),
    ("6100", "Rent", X, "USD", {}),
    ("6200", "Utilities", X, "USD", {}),
    ("6300", "Software subscriptions", X, "USD", {}),
    ("6400", "Marketing", X, "USD", {}),
    ("6500", "Travel", X, "USD", {}),
    ("6600", "Depreciation", X, "USD", {}),
    ("6700", "Bank fees", X, "USD", {}),
    ("6800", "Interest expense", X, "USD", {}),
]

CUSTOMERS = ["Acme Retail", "Blue Harbor Cafe", "Cobalt Labs", "Dunmore Hotels", "Evergreen Co-op"]
SUPPLIERS = ["Pacific Paper", "Metro Logistics", "Orbit Software", "City Power"]


def _d(value: str) -> Decimal:
    return Decimal(value)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


def seed_books(ctx: DemoContext) -> str:
    if JournalEntry.objects.exists():
        return "Ledger: it already has entries; nothing added."
    today, start = ctx.today, ctx.start
    periods = _periods(start, today + timedelta(days=31))
    accounts = _accounts()
    books = _Books(accounts, ctx.users)
    # Closed a week after they end, except last month and this one (their entries may still
    # come in; last month's close is the job the dashboard shows as due).
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    to_close = {p.end_date + timedelta(days=7): p for p in periods if p.end_date < last_month}
    books.opening(start)
    day = start + timedelta(days=2)
    while day <= today:
        books.trading_day(day)
        books.flush()
        if day in to_close:
            services.period_close(period=to_close[day], actor=books.approver)
            books.closed += 1
        day += timedelta(days=1)
    books.month_end(today)
    return (
        f"Ledger: {len(CHART)} accounts, {books.count} entries from {start} to {today}, "
        f"{books.closed} periods closed."
    )


DEMO = [DemoHistory(name="finance.books", order=10, seed=seed_books)]


def _periods(first: date, last: date) -> list[FiscalPeriod]:
    """Monthly periods from `first`'s month through December of `last`'s year."""
    periods = []
    year, month = first.year, first.month
    while year <= last.year:
        name = f"{year}-{month:02d}"
        period = FiscalPeriod.objects.filter(name=name).first()
        if period is None:
            end = calendar.monthrange(year, month)[1]
            period = services.period_create(
                name=name,
                start_date=date(year, month, 1),
                end_date=date(year, month, end),
                fiscal_year=year,
            )
        periods.append(period)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return periods


def _accounts() -> dict[str, Account]:
    accounts = {}
    for code, name, type_, currency, flags in CHART:
        existing = Account.objects.filter(code=code).first()
        accounts[code] = existing or services.account_create(
            code=code,
            name=name,
            type=type_,
            currency=currency,
            allow_negative=flags.get("allow_negative", False),
            is_control=flags.get("is_control", False),
        )
    return accounts


class _Books:
    """Writes the demo's entries as its people would: system postings by the admin (a batch a
    day), manual entries by the clerk approved by the approver. Deterministic (a seeded
    random). Keeps the running figures it needs to stay sound: the stock on hand (no sale
    costs more than there is), the open invoices and bills, the payroll withholdings and the
    sales tax to pay over."""

    def __init__(self, acc: dict[str, Account], users: dict) -> None:
        self.acc = acc
        self.clerk, self.approver, self.admin = users["clerk"], users["approver"], users["admin"]
        self.rnd = random.Random(20261125)  # deterministic demo
        self.count = 0
        self.closed = 0
        self.invoice_no = 1001
        self.stock = ZERO
        self.sold_at_cost = ZERO  # cost of goods sold since the last bill
        self.receivable: list[tuple[date, str, str, Decimal]] = []  # (due, number, customer, total)
        self.payable: list[tuple[date, str, Decimal]] = []  # (due, supplier, amount)
        self.withheld = ZERO
        self.tax_due = ZERO
        self.batch: list[dict] = []

    def ln(self, code: str, side: str, amount: Decimal) -> dict:
        return {"account": self.acc[code], "side": side, "amount": amount}

    def system(self, day: date, description: str, lines: list[dict], reference: str = "") -> None:
        """A system posting, recorded with the day's others in one batch (see `flush`)."""
        self.batch.append(
            {
                "entry_date": day,
                "description": description,
                "reference": reference,
                "source": EntrySource.SYSTEM,
                "lines": lines,
            }
        )

    def flush(self) -> None:
        """Records the held system postings through the batch service; the demo stops on a
        refusal (its figures are meant to stay sound)."""
        if not self.batch:
            return
        results = services.journal_entries_record_batch(entries=self.batch, actor=self.admin)
        refused = [r for r in results if r["status"] != "posted"]
        if refused:
            raise RuntimeError(f"demo posting refused: {refused[0]['error']}")
        self.count += len(results)
        self.batch = []

    def manual(
        self, day: date, description: str, lines: list[dict], *, leave: str = "posted"
    ) -> JournalEntry:
        self.flush()  # in date order with the system postings before it
        entry = services.journal_entry_create(
            entry_date=day, description=description, lines=lines, created_by=self.clerk
        )
        self.count += 1
        if leave == "draft":
            return entry
        entry = services.journal_entry_submit(entry=entry, actor=self.clerk)
        if leave == "pending":
            return entry
        return services.journal_entry_approve(entry=entry, actor=self.approver)

    def opening(self, start: date) -> None:
        ln = self.ln
        for day, description, debit, credit, amount in [
            (start, "Owner capital contribution", "1000", "3000", "250000.00"),
            (start, "Capital contribution to EUR account", "1020", "3010", "40000.00"),
            (start, "Term loan drawdown", "1000", "2500", "100000.00"),
            (
                start + timedelta(days=1),
                "Warehouse shelving and forklift",
                "1500",
                "1000",
                "48500.00",
            ),
            (start + timedelta(days=1), "Opening stock purchase", "1200", "1000", "95000.00"),
            (start + timedelta(days=2), "Office rent", "6100", "1000", "4200.00"),
        ]:
            self.manual(day, description, [ln(debit, "D", _d(amount)), ln(credit, "C", _d(amount))])
        self.stock = _d("95000.00")

    def trading_day(self, day: date) -> None:
        ln, rnd = self.ln, self.rnd
        if day.weekday() < 5:
            for _ in range(rnd.randint(1, 3)):
                self.invoice(day)
            self.receipts(day)
            if rnd.random() < 0.3:
                fee = Decimal(rnd.randint(500, 4500)) / 100
                self.system(
                    day, "Card processing fees", [ln("6700", "D", fee), ln("1000", "C", fee)]
                )
        self.pay_bills(day)
        if day.weekday() == 0:
            self.bill(day)
        if day.weekday() == 3:
            self.manual(
                day, "Utilities", [ln("6200", "D", _d("612.40")), ln("1000", "C", _d("612.40"))]
            )
        self.monthly(day)

    def monthly(self, day: date) -> None:
        ln = self.ln
        month = day.strftime("%B %Y")
        if day.day == 1:
            self.manual(
                day,
                f"Office rent, {month}",
                [ln("6100", "D", _d("4200.00")), ln("1000", "C", _d("4200.00"))],
            )
        if day.day == 3:
            self.system(
                day,
                "Software subscriptions",
                [ln("6300", "D", _d("1890.00")), ln("1000", "C", _d("1890.00"))],
            )
        if day.day == 5 and self.withheld:
            self.system(
                day,
                "Payroll taxes and withholdings paid over",
                [ln("2300", "D", self.withheld), ln("1000", "C", self.withheld)],
            )
            self.withheld = ZERO
        if day.day == 20 and self.tax_due:
            self.system(
                day,
                "Sales tax remitted",
                [ln("2200", "D", self.tax_due), ln("1000", "C", self.tax_due)],
            )
            self.tax_due = ZERO
        if day.day == 25:
            self.manual(
                day,
                f"Payroll, {month}",
                [
                    ln("6000", "D", _d("38400.00")),
                    ln("1000", "C", _d("31200.00")),
                    ln("2300", "C", _d("7200.00")),
                ],
            )
            self.withheld += _d("7200.00")
        if (day + timedelta(days=1)).day == 1:  # the month's last day
            self.system(
                day,
                f"Term loan interest, {month}",
                [ln("6800", "D", _d("541.67")), ln("1000", "C", _d("541.67"))],
            )
            self.manual(
                day,
                f"Depreciation, {month}",
                [ln("6600", "D", _d("808.33")), ln("1510", "C", _d("808.33"))],
            )
            if day.month % 3 == 0:
                self.manual(
                    day,
                    f"Marketing campaign, {month}",
                    [ln("6400", "D", _d("6250.00")), ln("1000", "C", _d("6250.00"))],
                )

    def invoice(self, day: date) -> None:
        """An invoice to a customer with its cost of goods (never more than the stock on hand)
        in one entry; the customer pays 2 to 6 weeks later."""
        ln, rnd, number = self.ln, self.rnd, f"INV-{self.invoice_no}"
        customer = rnd.choice(CUSTOMERS)
        net = Decimal(rnd.randint(40000, 900000)) / 100
        tax = _cents(net * _d("0.08"))
        cost = min(_cents(net * _d("0.40")), self.stock)
        lines = [ln("1100", "D", net + tax), ln("4000", "C", net), ln("2200", "C", tax)]
        if cost:
            lines += [ln("5000", "D", cost), ln("1200", "C", cost)]
        self.system(day, f"Invoice {number} to {customer}", lines, reference=number)
        self.stock -= cost
        self.sold_at_cost += cost
        self.tax_due += tax
        due = day + timedelta(days=rnd.randint(14, 42))
        self.receivable.append((due, number, customer, net + tax))
        self.invoice_no += 1

    def receipts(self, day: date) -> None:
        ln = self.ln
        due = [r for r in self.receivable if r[0] <= day]
        self.receivable = [r for r in self.receivable if r[0] > day]
        for _, number, customer, total in due:
            self.system(
                day,
                f"Payment received from {customer} for {number}",
                [ln("1000", "D", total), ln("1100", "C", total)],
                reference=number,
            )

    def bill(self, day: date) -> None:
        """A supplier's bill restocking what sold since the last one (and a little more)."""
        supplier = self.rnd.choice(SUPPLIERS)
        amount = max(
            _cents(self.sold_at_cost * Decimal(self.rnd.randint(95, 115)) / 100), _d("800.00")
        )
        self.manual(
            day,
            f"Bill from {supplier}",
            [self.ln("1200", "D", amount), self.ln("2000", "C", amount)],
        )
        self.stock += amount
        self.sold_at_cost = ZERO
        self.payable.append((day + timedelta(days=28), supplier, amount))

    def pay_bills(self, day: date) -> None:
        ln = self.ln
        due = [p for p in self.payable if p[0] <= day]
        self.payable = [p for p in self.payable if p[0] > day]
        for _, supplier, amount in due:
            self.system(
                day,
                f"Payment to {supplier}",
                [ln("2000", "D", amount), ln("1000", "C", amount)],
            )

    def month_end(self, today: date) -> None:
        """The last days' loose ends: a correction by reversal, entries waiting for approval
        (one from last month, which keeps it from closing) and a draft."""
        ln = self.ln
        self.flush()
        wrong = self.manual(
            today - timedelta(days=9),
            "Travel (posted to the wrong account)",
            [ln("6400", "D", _d("1320.00")), ln("1000", "C", _d("1320.00"))],
        )
        services.journal_entry_reverse(
            entry=wrong,
            actor=self.approver,
            entry_date=today - timedelta(days=8),
            description="Reversal: travel posted to marketing",
        )
        self.count += 1
        for days_ago, description, debit, credit, amount, leave in [
            (8, "Travel: customer visits", "6500", "1000", "1320.00", "posted"),
            (6, "Trade show booth deposit", "6400", "1000", "2400.00", "pending"),
            (2, "Accrued interest on term loan", "6800", "2100", "541.67", "pending"),
            (0, "Petty cash top-up", "1010", "1000", "300.00", "pending"),
            (0, "Office supplies", "6200", "1010", "86.20", "draft"),
        ]:
            self.manual(
                today - timedelta(days=days_ago),
                description,
                [ln(debit, "D", _d(amount)), ln(credit, "C", _d(amount))],
                leave=leave,
            )
