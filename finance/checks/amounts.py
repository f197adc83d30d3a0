"""Amounts: within their currency's minor unit; no forbidden negative balance."""

from collections.abc import Iterator
from decimal import Decimal

from django.db.models import F, Q

from config.registry import CheckContext, Finding, register
from finance.checks import common, ledger_pass
from finance.models import DEBIT_NORMAL, AccountBalance
from finance.money import CURRENCY_MINOR_UNITS
from finance.sql import money_sql

# 6. Amount precision ----------------------------------------------------------------------


@register("finance.amount_precision", tag="finance", severity="error", windowed=True)
def amount_precision(ctx: CheckContext) -> Iterator[Finding]:
    """Posted line amounts have no digits below their currency's minor unit (cents, yen, fils).

    The rules refuse such amounts, but the column keeps four places for every currency, so a
    raw write or an import can store 100.005 USD; it cannot be paid or reported exactly and
    sums drift from what the bank shows. Windowed: lines of entries posted since the window.
    """
    if ctx.since is None and ledger_pass.line_totals(ctx).precision_clean():
        return  # a full run's pass over the lines: no place below any currency's minor unit
    m = money_sql()
    lines, params = common.posted_lines(ctx, "l")
    by_places: dict[int, list[str]] = {}
    for currency, places in sorted(CURRENCY_MINOR_UNITS.items()):
        by_places.setdefault(places, []).append(currency)
    conditions, cond_params = [], []
    for places, currencies in sorted(by_places.items()):
        marks = ", ".join(["%s"] * len(currencies))
        conditions.append(f"(l.currency IN ({marks}) AND {m.unquantized('l.amount', places)})")
        cond_params += currencies
    known = ", ".join(["%s"] * len(CURRENCY_MINOR_UNITS))
    conditions.append(f"l.currency NOT IN ({known})")
    cond_params += sorted(CURRENCY_MINOR_UNITS)
    rows = common.rows(
        f"""SELECT currency, id, entry_id, amount, total FROM (
                SELECT l.currency, l.id, l.entry_id, l.amount,
                       row_number() OVER (PARTITION BY l.currency ORDER BY l.id) AS rn,
                       count(*) OVER (PARTITION BY l.currency) AS total
                  FROM finance_journalline l
                 WHERE {lines} AND ({" OR ".join(conditions)})
            ) x WHERE rn <= %s ORDER BY currency, id""",  # noqa: S608
        [*params, *cond_params, ctx.sample_size],
    )
    by_currency: dict[str, list[tuple]] = {}
    for row in rows:
        by_currency.setdefault(row[0], []).append(row)
    for currency, mine in by_currency.items():
        total = mine[0][4]
        minor = CURRENCY_MINOR_UNITS.get(currency)
        rule = f"{minor} decimal place(s)" if minor is not None else "an unknown currency"
        yield Finding(
            message=f"{total} posted line(s) in {currency} with more precision than {rule}",
            count=total,
            object_type="finance.journalline",
            key=currency,
            sample=[r[1] for r in mine],
            details={
                "currency": currency,
                "places": minor,
                "since": ctx.since,
                "lines": [{"id": r[1], "entry_id": r[2], "amount": _stored(r[3])} for r in mine],
            },
        )


def _stored(value: object) -> str:
    """An amount as the database holds it (on SQLite a float: its shortest repr)."""
    return str(Decimal(repr(value))) if isinstance(value, float) else str(value)


# 7. Negative balances -------------------------------------------------------------------


@register("finance.negative_balances", tag="finance", severity="error")
def negative_balances(ctx: CheckContext) -> Iterator[Finding]:
    """No account that disallows a negative balance is below zero on its normal side.

    Read from the balance cache, not the lines: it is what the posting rule judges (so this
    finds what the rule would have refused: rows written around it, or allow_negative switched
    off while the account was negative), it costs one row per account rather than a scan of
    every line, and finance.balance_cache proves the cache equals the lines.
    """
    debit_normal = [str(t) for t in DEBIT_NORMAL]
    below = (
        AccountBalance.objects.filter(account__allow_negative=False)
        .filter(
            Q(account__type__in=debit_normal, debit_total__lt=F("credit_total"))
            | (~Q(account__type__in=debit_normal) & Q(credit_total__lt=F("debit_total")))
        )
        .select_related("account")
        .order_by("account_id")
    )
    for bal in below:
        account = bal.account
        side = "debit" if account.is_debit_normal else "credit"
        yield Finding(
            message=f"account {account.code} is at {bal.balance} {account.currency} on its "
            f"{side} side and does not allow a negative balance",
            object_type="finance.account",
            object_id=str(account.pk),
            sample=[account.code],
            details={
                "account_id": account.pk,
                "code": account.code,
                "type": account.type,
                "currency": account.currency,
                "balance": str(bal.balance),
                "debit_total": str(bal.debit_total),
                "credit_total": str(bal.credit_total),
                "source": "balance cache",
            },
        )
