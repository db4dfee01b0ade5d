"""SPEC §3 metrics on a tiny frame whose every figure is worked out by hand below.

As of D = 2025-12-31, W = 2025-01-01 … 2025-12-31, default margin rate 25 %.
Customer A: 2024-06-01 100/60 (before W); 2025-03-01 200/120 and 50/30 (same
day); 2025-04-01 return −40/−24; 2025-10-01 150 with no cost (→ 112.50);
2026-01-05 999 (after D: must be invisible).
Customer B: one purchase 2025-12-21 80/50 (10 days before D).
Customer C: one purchase 2024-01-10 30/20 (before W).
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from customer_equity.settings import Metrics
from customer_equity.transforms.metrics import (
    annualised,
    costed_transactions,
    repeat_purchase_summary,
    window_metrics,
)
from customer_equity.transforms.windows import annualisation_factor, trailing, up_to
from tests.conftest import AS_OF, transactions

METRICS = Metrics()
TX = transactions(
    ("A1", "A", date(2024, 6, 1), 100.0, 60.0),
    ("A2", "A", date(2025, 3, 1), 200.0, 120.0),
    ("A3", "A", date(2025, 3, 1), 50.0, 30.0),
    ("A4", "A", date(2025, 4, 1), -40.0, -24.0),
    ("A5", "A", date(2025, 10, 1), 150.0, None),
    ("A6", "A", date(2026, 1, 5), 999.0, 1.0),
    ("B1", "B", date(2025, 12, 21), 80.0, 50.0),
    ("C1", "C", date(2024, 1, 10), 30.0, 20.0),
)


def _by_customer(lazy: pl.LazyFrame) -> dict[str, dict[str, object]]:
    return {row["customer_id"]: row for row in lazy.collect().to_dicts()}


@pytest.fixture
def costed() -> pl.LazyFrame:
    return costed_transactions(up_to(TX, "transaction_date", AS_OF), METRICS)


def test_window_metrics_net_returns_and_count_orders_once(costed: pl.LazyFrame) -> None:
    rows = _by_customer(window_metrics(costed, trailing(AS_OF, 365)))
    a = rows["A"]
    assert a["orders"] == 3  # A2, A3, A5: the return is not an order, A1 is before W
    assert a["revenue"] == pytest.approx(200 + 50 - 40 + 150)
    assert a["cost"] == pytest.approx(120 + 30 - 24 + 112.5)
    assert a["gross_margin"] == pytest.approx(360 - 238.5)
    assert a["margin_rate"] == pytest.approx(121.5 / 360)
    assert a["avg_order_value"] == pytest.approx(360 / 3)
    assert "C" not in rows  # no row in W at all


def test_missing_cost_uses_category_rate_then_default() -> None:
    tx = transactions(
        ("1", "A", AS_OF, 100.0, None, "books"),
        ("2", "A", AS_OF, 100.0, None, "toys"),
        ("3", "A", AS_OF, 100.0, 70.0, "books"),
    )
    metrics = Metrics(default_margin_rate=0.2, category_margin_rates={"books": 0.5})
    costs = costed_transactions(tx, metrics).collect().sort("transaction_id")
    assert costs["cost"].to_list() == pytest.approx([50.0, 80.0, 70.0])
    assert costs["cost_imputed"].to_list() == [True, True, False]


def test_repeat_purchase_summary_counts_purchase_days(costed: pl.LazyFrame) -> None:
    rows = _by_customer(repeat_purchase_summary(costed, AS_OF, "margin"))
    a = rows["A"]
    assert a["first_purchase_date"] == date(2024, 6, 1)
    assert a["last_purchase_date"] == date(2025, 10, 1)
    assert a["repeat_purchases"] == 2  # 2025-03-01 counts once; returns are not purchases
    assert a["recency_days"] == 487
    assert a["age_days"] == 578
    # repeat days' margin: 2025-03-01 (80 + 20), 2025-10-01 (150 − 112.5)
    assert a["monetary_value"] == pytest.approx((100 + 37.5) / 2)
    b = rows["B"]
    assert (b["repeat_purchases"], b["recency_days"], b["age_days"]) == (0, 0, 10)
    assert b["monetary_value"] is None


def test_repeat_summary_revenue_monetary(costed: pl.LazyFrame) -> None:
    rows = _by_customer(repeat_purchase_summary(costed, AS_OF, "revenue"))
    assert rows["A"]["monetary_value"] == pytest.approx((250 + 150) / 2)


def test_frequency_is_annualised_over_tenure_with_a_floor(costed: pl.LazyFrame) -> None:
    frame = repeat_purchase_summary(costed, AS_OF).join(
        window_metrics(costed, trailing(AS_OF, 365)), on="customer_id", how="left"
    )
    frame = frame.with_columns(pl.col("orders").fill_null(0), pl.col("gross_margin").fill_null(0))
    rows = _by_customer(annualised(frame, AS_OF, METRICS))
    assert rows["A"]["purchase_frequency"] == pytest.approx(3.0)  # tenure > W: factor 1
    # B: 11 days of tenure, floored to 30: one order → 365 / 30 a year
    assert rows["B"]["tenure_days"] == 11
    assert rows["B"]["purchase_frequency"] == pytest.approx(365 / 30)
    assert rows["C"]["purchase_frequency"] == 0


def test_annualisation_factor_between_floor_and_window() -> None:
    tenure = pl.DataFrame({"tenure": [1, 30, 100, 365, 1000]})
    factors = tenure.select(annualisation_factor(pl.col("tenure"), 365, 30)).to_series()
    assert factors.to_list() == pytest.approx([365 / 30, 365 / 30, 3.65, 1.0, 1.0])


def test_rows_after_as_of_never_reach_the_snapshot() -> None:
    later = pl.concat(
        [TX, transactions(("Z", "A", date(2026, 2, 1), 5000.0, 1.0), ("Y", "B", AS_OF, 0.0, 0.0))]
    )
    before = up_to(TX, "transaction_date", AS_OF)
    after = up_to(later, "transaction_date", AS_OF).filter(pl.col("transaction_id") != "Y")
    summary = [
        repeat_purchase_summary(costed_transactions(tx, METRICS), AS_OF)
        .collect()
        .sort("customer_id")
        for tx in (before, after)
    ]
    assert summary[0].equals(summary[1])
    assert up_to(later, "transaction_date", AS_OF).collect()["transaction_date"].max() == AS_OF


def test_customer_with_only_returns_has_no_purchase_summary() -> None:
    tx = transactions(("R", "D", AS_OF, -10.0, -5.0))
    summary = repeat_purchase_summary(costed_transactions(tx, METRICS), AS_OF).collect()
    assert summary.height == 0
