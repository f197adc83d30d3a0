"""Hostile input to the entry API: any JSON gets 201, 400 or 422 in the error shape, never 500,
and whatever is accepted balances."""

import json
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finance.models import JournalEntry

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
amounts = st.one_of(
    st.decimals(
        min_value=Decimal("-1e6"), max_value=Decimal("1e22"), places=3, allow_nan=False
    ).map(str),
    st.sampled_from(["NaN", "Infinity", "-0", "1e400", "0.0001", "  12.50 ", "12,50", "", "1_000"]),
    json_scalars,
)


@st.composite
def entry_payloads(draw, account_ids):
    line = st.fixed_dictionaries(
        {
            "account": st.one_of(st.sampled_from(account_ids), json_scalars),
            "side": st.one_of(st.sampled_from(["D", "C"]), json_scalars),
            "amount": amounts,
        },
        optional={
            "currency": st.one_of(st.sampled_from(["USD", "EUR", "XXX"]), json_scalars),
            "description": st.text(max_size=600),
        },
    )
    payload = {
        "entry_date": draw(st.one_of(st.dates().map(str), json_scalars)),
        "description": draw(st.one_of(st.text(max_size=600), json_scalars)),
        "lines": draw(st.one_of(st.lists(line, max_size=6), json_scalars)),
    }
    if draw(st.booleans()):
        del payload[draw(st.sampled_from(sorted(payload)))]
    return payload


def test_entry_api_never_500s(api, ledger, clerk):
    client = api.as_user(clerk)
    ids = [ledger.cash.pk, ledger.equity.pk, ledger.bank_eur.pk, ledger.expense.pk]

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(entry_payloads(ids))
    def check(payload):
        body = json.dumps(payload)  # may carry NaN/Infinity tokens: hostile, still JSON-ish
        response = client.post("/api/v1/entries/", body, content_type="application/json")
        assert response.status_code in (201, 400, 422), (payload, response.content)
        if response.status_code != 201:
            error = response.json()["error"]
            assert set(error) == {"code", "message", "fields"}

    check()
    for entry in JournalEntry.objects.prefetch_related("lines"):
        by_currency: dict[str, Decimal] = {}
        for ln in entry.lines.all():
            by_currency[ln.currency] = by_currency.get(ln.currency, 0) + ln.signed_amount
        assert all(v == 0 for v in by_currency.values()), entry


def test_nul_characters_are_refused_not_500(api, ledger, clerk):
    payload = {
        "entry_date": ledger.today.isoformat(),
        "description": "evil\x00text",
        "lines": [
            {"account": ledger.cash.pk, "side": "D", "amount": "1.00", "description": "a\x00"},
            {"account": ledger.equity.pk, "side": "C", "amount": "1.00"},
        ],
    }
    response = api.as_user(clerk).post("/api/v1/entries/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert not JournalEntry.objects.exists()


def test_near_valid_entries_are_201_or_422_and_accepted_ones_balance(api, ledger, clerk):
    client = api.as_user(clerk)
    accounts = [
        ledger.cash.pk,
        ledger.equity.pk,
        ledger.expense.pk,
        ledger.bank_eur.pk,
        ledger.equity_eur.pk,
    ]
    amount = st.one_of(
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1e9"), places=2),
        st.decimals(min_value=Decimal("-5"), max_value=Decimal("1e9"), places=3),
    )
    pair = st.tuples(st.sampled_from(accounts), st.sampled_from(accounts), amount)
    outcomes: set[int] = set()

    @settings(
        max_examples=200,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(pair, min_size=1, max_size=3))
    def check(pairs):
        lines = []
        for debit, credit, value in pairs:
            lines += [
                {"account": debit, "side": "D", "amount": str(value)},
                {"account": credit, "side": "C", "amount": str(value)},
            ]
        response = client.post(
            "/api/v1/entries/",
            {"entry_date": ledger.today.isoformat(), "description": "f", "lines": lines},
            format="json",
        )
        assert response.status_code in (201, 422), response.content
        outcomes.add(response.status_code)

    check()
    assert outcomes == {201, 422}
    for entry in JournalEntry.objects.prefetch_related("lines"):
        totals: dict[str, Decimal] = {}
        for ln in entry.lines.all():
            totals[ln.currency] = totals.get(ln.currency, 0) + ln.signed_amount
        assert all(v == 0 for v in totals.values())
