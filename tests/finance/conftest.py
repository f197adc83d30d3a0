"""Fixtures of the finance tests."""

import pytest

from tests.finance.helpers import Books


@pytest.fixture
def books(ledger, post) -> Books:
    return Books(
        funding=post(ledger.cash, ledger.equity, "100.00"),
        rent=post(ledger.expense, ledger.cash, "40.00"),
        euros=post(ledger.bank_eur, ledger.equity_eur, "50.00"),
    )
