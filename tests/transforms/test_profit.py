"""SPEC §3 profit decomposition (客户为企业带来的总体利润), worked by hand.

D = 2025-12-31, W = calendar 2025. Margin = amount − cost.

A: 2024-05-01 books 100/60 (before W, but it is the first purchase: core = books)
   2025-02-01 books 200/150 discount 20 → 50
   2025-03-01 toys  100/70  discount 5  → 30
   2025-04-01 games  50/20              → 30
   2025-05-01 books −40/−30 (a return)  → −10
   basic = 50 − 10 = 40; cross-sell = 30 + 30 = 60; concessions = 20 + 5 = 25
   referred D and E: D's 2025 margin 100 − 70 = 30 (its 2024 row is outside W),
   E's 60 − 50 = 10 → referral value 40.
B: 2025-06-01 toys 30/10 and books 80/50 on the same day: core = books (larger
   amount) → basic 30, cross-sell 20; no discount values → concessions null;
   referred nobody while referral data exists → referral value 0.
C: no category on any row → core, basic and cross-sell null; a discount of 0
   is a known zero → concessions 0.
H: bought only in 2024, referred I (2025: 100 − 75 = 25) → referral value 25.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from customer_equity.settings import Metrics
from customer_equity.transforms.metrics import costed_transactions
from customer_equity.transforms.profit import core_category, profit_decomposition
from customer_equity.transforms.windows import trailing
from tests.conftest import AS_OF, frame, transactions

W = trailing(AS_OF, 365)
TX = costed_transactions(
    transactions(
        ("A0", "A", date(2024, 5, 1), 100.0, 60.0, "books"),
        ("A1", "A", date(2025, 2, 1), 200.0, 150.0, "books", 20.0),
        ("A2", "A", date(2025, 3, 1), 100.0, 70.0, "toys", 5.0),
        ("A3", "A", date(2025, 4, 1), 50.0, 20.0, "games"),
        ("A4", "A", date(2025, 5, 1), -40.0, -30.0, "books"),
        ("B1", "B", date(2025, 6, 1), 30.0, 10.0, "toys"),
        ("B2", "B", date(2025, 6, 1), 80.0, 50.0, "books"),
        ("C1", "C", date(2025, 7, 1), 100.0, 40.0, None, 0.0),
        ("D0", "D", date(2024, 8, 1), 500.0, 0.0),
        ("D1", "D", date(2025, 8, 1), 100.0, 70.0),
        ("E1", "E", date(2025, 9, 1), 60.0, 50.0),
        ("H0", "H", date(2024, 3, 1), 100.0, 50.0),
        ("I1", "I", date(2025, 10, 1), 100.0, 75.0),
    ),
    Metrics(),
)
CUSTOMER_SCHEMA = {"customer_id": pl.String, "referred_by": pl.String}


def customers(*rows: tuple[str, str | None]) -> pl.LazyFrame:
    return frame([dict(zip(CUSTOMER_SCHEMA, row, strict=True)) for row in rows], CUSTOMER_SCHEMA)


REFERRALS = customers(
    ("A", None), ("B", None), ("C", None), ("D", "A"), ("E", "A"), ("H", None), ("I", "H")
)


def _by_customer(lazy: pl.LazyFrame) -> dict[str, dict[str, object]]:
    return {row["customer_id"]: row for row in lazy.collect().to_dicts()}


@pytest.fixture(scope="module")
def profit() -> dict[str, dict[str, object]]:
    return _by_customer(profit_decomposition(TX, REFERRALS, W))


def test_basic_and_cross_sell_split_by_core_category(profit: dict) -> None:
    a = profit["A"]
    assert a["core_category"] == "books"
    assert a["basic_profit"] == pytest.approx(40.0)  # 50 − 10 (the books return nets)
    assert a["cross_sell_profit"] == pytest.approx(60.0)  # toys 30 + games 30
    # basic + cross-sell = the customer's whole margin in W when every row has a category
    assert a["basic_profit"] + a["cross_sell_profit"] == pytest.approx(50 + 30 + 30 - 10)


def test_core_category_ties_on_first_day_go_to_larger_amount(profit: dict) -> None:
    b = profit["B"]
    assert b["core_category"] == "books"
    assert (b["basic_profit"], b["cross_sell_profit"]) == (pytest.approx(30.0), pytest.approx(20.0))


def test_core_category_is_the_first_purchase_not_a_return() -> None:
    tx = transactions(
        ("1", "K", date(2025, 1, 1), -10.0, -5.0, "games"),  # a return: not a purchase
        ("2", "K", date(2025, 2, 1), 50.0, 30.0, "toys"),
        ("3", "K", date(2025, 3, 1), 500.0, 100.0, "books"),  # bigger, but later
    )
    assert core_category(tx).collect().rows() == [("K", "toys")]


def test_price_concessions_sum_discounts(profit: dict) -> None:
    assert profit["A"]["price_concessions"] == pytest.approx(25.0)  # 20 + 5; null rows skipped
    assert profit["C"]["price_concessions"] == 0.0  # a known zero stays zero


def test_referral_value_is_referred_customers_margin_in_w(profit: dict) -> None:
    assert profit["A"]["referral_value"] == pytest.approx(40.0)  # D 30 (not its 2024 500) + E 10
    assert profit["H"]["referral_value"] == pytest.approx(25.0)  # referrer without own rows in W
    assert profit["B"]["referral_value"] == 0.0  # data exists, referred nobody


def test_no_category_gives_null_not_zero(profit: dict) -> None:
    c = profit["C"]
    assert c["core_category"] is None
    assert c["basic_profit"] is None
    assert c["cross_sell_profit"] is None


def test_no_discount_values_give_null_concessions(profit: dict) -> None:
    assert profit["B"]["price_concessions"] is None
    assert profit["D"]["price_concessions"] is None


def test_no_referral_data_gives_null_referral_value() -> None:
    for no_referrals in (customers(("A", None), ("D", None)), customers()):
        rows = _by_customer(profit_decomposition(TX, no_referrals, W))
        assert {row["referral_value"] for row in rows.values()} == {None}


def test_uncategorised_row_of_a_categorised_customer_is_neither_basic_nor_cross_sell() -> None:
    """Current behaviour: a row without category is in neither component (see report)."""
    tx = costed_transactions(
        transactions(
            ("1", "M", date(2025, 1, 10), 100.0, 50.0, "books"),
            ("2", "M", date(2025, 2, 10), 100.0, 50.0),
        ),
        Metrics(),
    )
    m = profit_decomposition(tx, customers(), W).collect().row(0, named=True)
    assert (m["basic_profit"], m["cross_sell_profit"]) == (50.0, 0.0)
