"""The demo's books (config/demo.py, `manage.py seed_demo`): Northwind Supplies Ltd, a chart
of accounts, monthly periods and the context's days of postings, ending today."""

import calendar
import random
from datetime import date, timedelta
from decimal import Decimal

from config.demo import DemoContext, DemoHistory
from finance import services
from finance.models import Account, AccountType, EntrySource, FiscalPeriod, JournalEntry

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


def seed_books(ctx: DemoContext) -> str:
    if JournalEntry.objects.exists():
        return "Ledger: it already has entries; nothing added."
    today, start = ctx.today, ctx.start
    _periods({start.year, today.year, (today + timedelta(days=31)).year})
    accounts = _accounts()
    books = _Books(accounts, ctx.users)
    books.opening(start)
    day = start + timedelta(days=2)
    while day <= today:
        books.trading_day(day, start)
        day += timedelta(days=1)
    books.month_end(today)
    return f"Ledger: {len(CHART)} accounts, {books.count} entries from {start} to {today}."


DEMO = [DemoHistory(name="finance.books", order=10, seed=seed_books)]


def _periods(years: set[int]) -> None:
    for year in sorted(years):
        for month in range(1, 13):
            name = f"{year}-{month:02d}"
            if FiscalPeriod.objects.filter(name=name).exists():
                continue
            last = calendar.monthrange(year, month)[1]
            services.period_create(
                name=name,
                start_date=date(year, month, 1),
                end_date=date(year, month, last),
                fiscal_year=year,
            )


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
    """Writes the demo's entries as its people would: system postings by the admin, manual
    entries by the clerk approved by the approver. Deterministic (a seeded random)."""

    def __init__(self, acc: dict[str, Account], users: dict) -> None:
        self.acc = acc
        self.clerk, self.approver, self.admin = users["clerk"], users["approver"], users["admin"]
        self.rnd = random.Random(20261125)  # deterministic demo
        self.count = 0
        self.invoice_no = 1001
        self.open_invoices: list[tuple[str, str, Decimal]] = []

    def ln(self, code: str, side: str, amount: Decimal) -> dict:
        return {"account": self.acc[code], "side": side, "amount": amount}

    def system(self, day: date, description: str, lines: list[dict], reference: str = "") -> None:
        services.journal_entry_record(
            entry_date=day,
            description=description,
            lines=lines,
            actor=self.admin,
            reference=reference,
            source=EntrySource.SYSTEM,
        )
        self.count += 1

    def manual(
        self, day: date, description: str, lines: list[dict], *, leave: str = "posted"
    ) -> JournalEntry:
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

    def trading_day(self, day: date, start: date) -> None:
        ln, rnd = self.ln, self.rnd
        if day.weekday() < 5:
            for _ in range(rnd.randint(1, 3)):
                self.invoice(day)
            if self.open_invoices and rnd.random() < 0.7:
                number, customer, paid = self.open_invoices.pop(0)
                self.system(
                    day,
                    f"Payment received from {customer} for {number}",
                    [ln("1000", "D", paid), ln("1100", "C", paid)],
                    reference=number,
                )
            if rnd.random() < 0.3:
                fee = Decimal(rnd.randint(500, 4500)) / 100
                self.system(
                    day, "Card processing fees", [ln("6700", "D", fee), ln("1000", "C", fee)]
                )
        if day.day == 15 or day == start + timedelta(days=14):
            self.manual(
                day,
                "Payroll",
                [
                    ln("6000", "D", _d("38400.00")),
                    ln("1000", "C", _d("31200.00")),
                    ln("2300", "C", _d("7200.00")),
                ],
            )
        if day.weekday() == 0:
            supplier = rnd.choice(SUPPLIERS)
            amount = Decimal(rnd.randint(80000, 400000)) / 100
            self.manual(
                day, f"Bill from {supplier}", [ln("1200", "D", amount), ln("2000", "C", amount)]
            )
        if day.weekday() == 3:
            self.manual(
                day, "Utilities", [ln("6200", "D", _d("612.40")), ln("1000", "C", _d("612.40"))]
            )

    def invoice(self, day: date) -> None:
        """An invoice to a customer and its cost of goods; the invoice stays open until paid."""
        ln, rnd, number = self.ln, self.rnd, f"INV-{self.invoice_no}"
        customer = rnd.choice(CUSTOMERS)
        net = Decimal(rnd.randint(40000, 900000)) / 100
        tax = (net * _d("0.08")).quantize(_d("0.01"))
        cost = (net * _d("0.40")).quantize(_d("0.01"))
        self.system(
            day,
            f"Invoice {number} to {customer}",
            [ln("1100", "D", net + tax), ln("4000", "C", net), ln("2200", "C", tax)],
            reference=number,
        )
        self.system(
            day,
            f"Cost of goods for {number}",
            [ln("5000", "D", cost), ln("1200", "C", cost)],
            reference=number,
        )
        self.open_invoices.append((number, customer, net + tax))
        self.invoice_no += 1

    def month_end(self, today: date) -> None:
        ln = self.ln
        for days_ago, description, debit, credit, amount in [
            (20, "Software subscriptions", "6300", "1000", "1890.00"),
            (12, "Trade show booth", "6400", "1000", "7400.00"),
        ]:
            self.manual(
                today - timedelta(days=days_ago),
                description,
                [ln(debit, "D", _d(amount)), ln(credit, "C", _d(amount))],
            )
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
            (1, "Monthly depreciation", "6600", "1510", "808.33", "posted"),
            (0, "Accrued interest on term loan", "6800", "2100", "541.67", "pending"),
            (0, "Petty cash top-up", "1010", "1000", "300.00", "draft"),
        ]:
            self.manual(
                today - timedelta(days=days_ago),
                description,
                [ln(debit, "D", _d(amount)), ln(credit, "C", _d(amount))],
                leave=leave,
            )
