"""`customer_metrics` end to end on a tiny Inputs, every figure worked by hand.

D = 2025-12-31, W = calendar 2025; decline halves: recent 2025-07-05 … 12-31,
prior 2025-01-06 … 07-04 (180 days each).

transactions (amount/cost → margin)
  A: 2024-06-01 books 100/60 (before W); 2025-03-01 books 200/120 discount 10 (80);
     2025-09-01 toys 100/50 (50)
     → orders 2, revenue 300, cost 170, margin 130, M = 130/300, AOV 150,
       tenure > 1 year so N = 2 and annual margin 130; K = 300 / 1,000 = 0.3;
       P = 1,000 / 2 = 500 → P·K·M·N = 500 · 0.3 · 13/30 · 2 = 130;
       basic (books) 80, cross-sell (toys) 50, concessions 10, referral (B) 20;
       serve cost 40 (service 2025-05-01; the 2024 retention cost is before W),
       acquisition 100 → Q − C = 130 − 40 = 90;
       revenue recent 100 vs prior 200 (−50 %), wallet 1,000 · 180/365 in both
       halves (0 %) → decline.
  B: 2025-12-01 50/30 (20), referred by A; tenure 31 days → N = 365/31,
     Q − C = 20 · 365/31; no costs of its own → serve 0, acquisition 0; development.
  C: 2024-10-01 80/40 only: 456 days ago → churned, termination; no W activity.
customers: A, B, C (segments x, x, y) and the prospect P (x, created 2025-06-01).
wallets: A 2025 = 1,000; P 2025 = 2,000 → P's estimate = 2,000 · 0.3 (target K)
  · segment x margin rate (130 + 20) / (300 + 50) = 3/7 → 1,800 / 7.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from customer_equity.schemas.outputs import conform
from customer_equity.settings import Settings
from customer_equity.transforms.outputs import Inputs, columns_of, customer_metrics
from tests.conftest import AS_OF, frame, transactions

CUSTOMER_SCHEMA = {
    "customer_id": pl.String,
    "created_date": pl.Date,
    "segment": pl.String,
    "referred_by": pl.String,
    "status": pl.String,
    "closed_date": pl.Date,
}
WALLET_SCHEMA = {
    "customer_id": pl.String,
    "period_start": pl.Date,
    "period_end": pl.Date,
    "total_purchases": pl.Float64,
}
COST_SCHEMA = {
    "customer_id": pl.String,
    "cost_date": pl.Date,
    "cost_type": pl.String,
    "amount": pl.Float64,
}
SETTINGS = Settings()


def rows_of(schema: dict, *rows: tuple) -> pl.LazyFrame:
    return frame([dict(zip(schema, row, strict=True)) for row in rows], schema)


TX = transactions(
    ("A0", "A", date(2024, 6, 1), 100.0, 60.0, "books"),
    ("A1", "A", date(2025, 3, 1), 200.0, 120.0, "books", 10.0),
    ("A2", "A", date(2025, 9, 1), 100.0, 50.0, "toys"),
    ("B1", "B", date(2025, 12, 1), 50.0, 30.0),
    ("C1", "C", date(2024, 10, 1), 80.0, 40.0),
)
CUSTOMERS = rows_of(
    CUSTOMER_SCHEMA,
    ("A", date(2024, 5, 1), "x", None, "active", None),
    ("B", date(2025, 11, 1), "x", "A", "active", None),
    ("C", date(2024, 9, 1), "y", None, "active", None),
    ("P", date(2025, 6, 1), "x", None, "active", None),
)
WALLETS = rows_of(
    WALLET_SCHEMA,
    ("A", date(2025, 1, 1), date(2025, 12, 31), 1000.0),
    ("P", date(2025, 1, 1), date(2025, 12, 31), 2000.0),
)
COSTS = rows_of(
    COST_SCHEMA,
    ("A", date(2024, 5, 1), "acquisition", 100.0),
    ("A", date(2024, 6, 1), "retention", 999.0),
    ("A", date(2025, 5, 1), "service", 40.0),
)
INPUTS = Inputs(TX, CUSTOMERS, WALLETS, COSTS)


def metrics_of(inputs: Inputs) -> pl.DataFrame:
    return customer_metrics(inputs, AS_OF, SETTINGS).collect()


def _by_customer(result: pl.DataFrame) -> dict[str, dict[str, object]]:
    return {row["customer_id"]: row for row in result.to_dicts()}


@pytest.fixture(scope="module")
def result() -> pl.DataFrame:
    return metrics_of(INPUTS)


@pytest.fixture(scope="module")
def rows(result: pl.DataFrame) -> dict[str, dict[str, object]]:
    return _by_customer(result)


def test_one_row_per_customer_with_every_column(result: pl.DataFrame) -> None:
    assert result["customer_id"].to_list() == ["A", "B", "C", "P"]
    assert result.columns == columns_of("customer_metrics")


def test_buyer_metrics(rows: dict) -> None:
    a = rows["A"]
    assert (a["first_purchase_date"], a["last_purchase_date"]) == (
        date(2024, 6, 1),
        date(2025, 9, 1),
    )
    assert a["orders"] == 2
    assert (a["revenue"], a["cost"], a["gross_margin"]) == pytest.approx((300.0, 170.0, 130.0))
    assert a["margin_rate"] == pytest.approx(130 / 300)
    assert a["avg_order_value"] == pytest.approx(150.0)
    assert a["purchase_frequency"] == pytest.approx(2.0)
    assert a["purchase_share"] == pytest.approx(0.3)
    assert a["purchase_share_clipped"] is False
    assert a["annual_gross_margin"] == pytest.approx(130.0)
    assert a["wallet_per_order"] == pytest.approx(500.0)
    assert a["annual_margin_pkmn"] == pytest.approx(a["annual_gross_margin"])
    assert a["estimated_annual_margin"] is None  # not a prospect


def test_costs_and_profit_components(rows: dict) -> None:
    a, b = rows["A"], rows["B"]
    assert (a["serve_cost"], a["acquisition_cost"]) == (40.0, 100.0)
    assert a["annual_contribution"] == pytest.approx(90.0)  # (130 − 40) · 1
    assert (a["core_category"], a["basic_profit"], a["cross_sell_profit"]) == ("books", 80.0, 50.0)
    assert a["price_concessions"] == 10.0
    assert a["referral_value"] == pytest.approx(20.0)  # B's margin
    # costs exist, but none for B: a known zero, not null
    assert (b["serve_cost"], b["acquisition_cost"]) == (0.0, 0.0)
    assert b["annual_contribution"] == pytest.approx(20 * 365 / 31)
    assert b["referral_value"] == 0.0


def test_stages_and_churn(rows: dict) -> None:
    a, b, c = rows["A"], rows["B"], rows["C"]
    assert (a["revenue_recent"], a["revenue_prior"]) == (100.0, 200.0)
    assert a["wallet_recent"] == pytest.approx(1000 * 180 / 365)
    assert a["wallet_prior"] == pytest.approx(1000 * 180 / 365)
    assert a["lifecycle_stage"] == "decline"
    assert "(-50%)" in a["stage_reason"]
    assert "customer's business 0%" in a["stage_reason"]
    assert (b["tenure_days"], b["lifecycle_stage"]) == (31, "development")
    assert b["purchase_frequency"] == pytest.approx(365 / 31)
    assert (c["churned"], c["days_since_last_purchase"], c["days_to_churn"]) == (True, 456, -91)
    assert c["lifecycle_stage"] == "termination"
    assert (c["orders"], c["revenue"], c["gross_margin"]) == (0, 0.0, 0.0)
    assert c["margin_rate"] is None  # no revenue in W: M is null, not 0
    assert {row["churned"] for row in (a, b)} == {False}


def test_prospect_is_included_as_potential(rows: dict) -> None:
    p = rows["P"]
    assert p["is_prospect"] is True
    assert p["lifecycle_stage"] == "potential"
    assert p["first_purchase_date"] is None
    assert (p["orders"], p["revenue"], p["churned"]) == (0, 0.0, False)
    assert p["segment"] == "x"
    assert p["estimated_annual_margin"] == pytest.approx(2000 * 0.3 * 150 / 350)  # 1,800 / 7


def test_empty_costs_give_null_costs_not_zero() -> None:
    no_costs = Inputs(TX, CUSTOMERS, WALLETS, rows_of(COST_SCHEMA))
    result = _by_customer(metrics_of(no_costs))
    for row in result.values():
        assert (row["serve_cost"], row["acquisition_cost"]) == (None, None)
    # Q − C then counts the unknown serve cost as 0: A's annual margin, 130
    assert result["A"]["annual_contribution"] == pytest.approx(130.0)


def test_rows_dated_after_d_change_nothing(result: pl.DataFrame) -> None:
    later = Inputs(
        pl.concat(
            [
                TX,
                transactions(
                    ("A9", "A", date(2026, 1, 5), 999.0, 1.0, "games", 50.0),
                    ("Y1", "Y", date(2026, 1, 10), 50.0, 20.0),
                    ("C9", "C", date(2026, 1, 2), 80.0, 40.0),
                ),
            ]
        ),
        pl.concat(
            [
                # A closed only after D; Z is known only after D
                CUSTOMERS.filter(pl.col("customer_id") != "A"),
                rows_of(
                    CUSTOMER_SCHEMA,
                    ("A", date(2024, 5, 1), "x", None, "closed", date(2026, 3, 1)),
                    ("Z", date(2026, 2, 1), "x", "A", "active", None),
                ),
            ]
        ),
        pl.concat(
            [
                WALLETS,
                rows_of(WALLET_SCHEMA, ("A", date(2026, 1, 1), date(2026, 12, 31), 9000.0)),
            ]
        ),
        pl.concat([COSTS, rows_of(COST_SCHEMA, ("B", date(2026, 1, 3), "acquisition", 500.0))]),
    )
    assert metrics_of(later).equals(result)


def test_only_costs_after_d_count_as_no_costs() -> None:
    after = rows_of(COST_SCHEMA, ("A", date(2026, 1, 3), "service", 500.0))
    result = _by_customer(metrics_of(Inputs(TX, CUSTOMERS, WALLETS, after)))
    assert (result["A"]["serve_cost"], result["B"]["acquisition_cost"]) == (None, None)


def test_output_schema_accepts_the_frame(result: pl.DataFrame) -> None:
    conformed = conform("customer_metrics", result)
    assert conformed.height == 4
    assert conformed["customer_id"].to_list() == ["A", "B", "C", "P"]


def test_a_wallet_covering_part_of_a_half_is_compared_per_day() -> None:
    """A 2024-only wallet as of 2025-03-31 covers 90 of the recent 180 days but all the prior.

    Pro-rated totals would read as the customer's business halving (−50 %) and
    hide our own 40 % fall; per day it is flat, so the customer is in decline.
    """
    as_of = date(2025, 3, 31)
    tx = transactions(
        ("D0", "D", date(2023, 1, 10), 100.0, 50.0),
        ("D1", "D", date(2024, 6, 1), 100.0, 50.0),  # prior half: 100
        ("D2", "D", date(2024, 12, 1), 60.0, 30.0),  # recent half: 60 (−40 %)
    )
    wallet = rows_of(WALLET_SCHEMA, ("D", date(2024, 1, 1), date(2024, 12, 31), 366.0))
    no_customers = rows_of(CUSTOMER_SCHEMA)
    no_costs = rows_of(COST_SCHEMA)
    (row,) = (
        customer_metrics(Inputs(tx, no_customers, wallet, no_costs), as_of, SETTINGS)
        .collect()
        .to_dicts()
    )
    assert row["wallet_recent"] == pytest.approx(row["wallet_prior"])  # 1 a day in both
    assert row["lifecycle_stage"] == "decline"
