"""SPEC §7 customer equity: the four steps, with each group's own churn rate from §4."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from customer_equity.settings import Settings, Value
from customer_equity.transforms import outputs
from customer_equity.transforms.equity import customer_equity, equity_partials
from customer_equity.transforms.models import PurchaseModels
from tests.conftest import AS_OF, transactions
from tests.transforms.test_outputs import COST_SCHEMA, CUSTOMER_SCHEMA, WALLET_SCHEMA, rows_of


def _pvifa(years: float, rate: float = 0.08) -> float:
    return (1 - (1 + rate) ** -years) / rate


def _churn(rows: list[tuple[str, str | None, int, int]]) -> pl.LazyFrame:
    """A `churn` table from (group_by, group_value, customers_at_start, customers_lost)."""
    return pl.LazyFrame(
        [
            {
                "group_by": group_by,
                "group_value": value,
                "customers_at_start": start,
                "customers_lost": lost,
                "churn_rate": lost / start if start else None,
            }
            for group_by, value, start, lost in rows
        ]
    )


def _rows(frame: pl.LazyFrame) -> dict[tuple[str, str | None], dict[str, object]]:
    return {(r["group_by"], r["group_value"]): r for r in frame.collect().to_dicts()}


VALUED = pl.LazyFrame(
    {
        "customer_id": ["a", "b", "c", "gone", "prospect"],
        "segment": ["x", "x", "y", "x", "x"],
        "value_tier": ["core", "general", "general", "general", "general"],
        "churned": [False, False, False, True, False],
        "is_prospect": [False, False, False, False, True],
        "annual_contribution": [100.0, 300.0, 50.0, 999.0, None],
        # the r each customer's CLV used (customer_value.churn_rate)
        "churn_rate": [0.2, 0.2, 0.1, 0.2, 0.2],
    }
)


def test_four_steps_with_each_groups_own_rate() -> None:
    """r per group is the `churn` row of that group (SPEC §7 step 1), not a mean of customers.

    churn: base 25 of 100 lost (r = 0.25); x 20 of 100 (0.2); y 10 of 100 (0.1).
    Active customers: a, b (x, contributions 100, 300), c (y, 50); `gone` is
    churned and `prospect` a prospect: neither is in any group.
    base: 3 customers, average 150, T = 4 → equity 3 · 150 · PVIFA(8 %, 4)
          (the mean of the customers' rates, 0.1667, would give T = 6);
    x: 2 customers, average 200, T = 5 → 2 · 200 · 3.99271;
    y: 1 customer, 50, T = 10 → 50 · PVIFA(8 %, 10).
    Value tiers have no history a year ago: their r is the mean of the r used
    for their active members' CLVs — core = {a}: 0.2; general = {b, c}: 0.15.
    """
    churn = _churn([("base", "all", 100, 25), ("segment", "x", 100, 20), ("segment", "y", 100, 10)])
    rows = _rows(customer_equity(equity_partials(VALUED), churn, Value(), 0.08))
    base, x, y = rows[("base", "all")], rows[("segment", "x")], rows[("segment", "y")]
    assert (base["customers"], base["churn_rate"], base["lifetime_source"]) == (3, 0.25, "base")
    assert base["avg_lifetime_years"] == pytest.approx(4.0)
    assert base["avg_annual_contribution"] == pytest.approx(150.0)
    assert base["customer_equity"] == pytest.approx(3 * 150 * _pvifa(4))
    assert (x["customers"], x["churn_rate"], x["lifetime_source"]) == (2, 0.2, "segment")
    assert x["clv_per_customer"] == pytest.approx(200 * _pvifa(5))
    assert x["customer_equity"] == pytest.approx(2 * 200 * _pvifa(5))
    assert (y["churn_rate"], y["customer_equity"]) == (0.1, pytest.approx(50 * _pvifa(10)))
    core, general = rows[("value_tier", "core")], rows[("value_tier", "general")]
    assert (core["churn_rate"], core["lifetime_source"]) == (pytest.approx(0.2), "members")
    assert general["churn_rate"] == pytest.approx(0.15)
    assert general["customer_equity"] == pytest.approx(2 * 175 * _pvifa(1 / 0.15))
    assert {r["discount_rate"] for r in rows.values()} == {0.08}


def test_segments_fall_back_like_customer_value() -> None:
    """SPEC §6 fallbacks per segment, `lifetime_source` naming the rate used.

    min_group_size 30: x had 20 customers a year ago → the base's r (0.25);
    y lost nobody → the base's r; z was unseen a year ago → the base's r.
    """
    churn = _churn([("base", "all", 200, 50), ("segment", "x", 20, 10), ("segment", "y", 180, 0)])
    valued = VALUED.with_columns(
        pl.when(pl.col("customer_id") == "b")
        .then(pl.lit("z"))
        .otherwise("segment")
        .alias("segment")
    )
    rows = _rows(customer_equity(equity_partials(valued), churn, Value(min_group_size=30), 0.08))
    for segment in ("x", "y", "z"):
        row = rows[("segment", segment)]
        assert (row["churn_rate"], row["lifetime_source"]) == (0.25, "base"), segment
    assert "20 customers" in rows[("segment", "x")]["lifetime_reason"]
    assert "no churn" in rows[("segment", "y")]["lifetime_reason"]
    assert "a year ago" in rows[("segment", "z")]["lifetime_reason"]


def test_a_base_nobody_was_active_in_a_year_ago_rests_on_the_cap() -> None:
    """CDNOW as of 1997-09-30: no churn rate can be observed; T = max_lifetime_years (20)."""
    churn = _churn([("base", "all", 0, 0)])
    rows = _rows(
        customer_equity(equity_partials(VALUED), churn, Value(max_lifetime_years=20), 0.08)
    )
    base = rows[("base", "all")]
    assert (base["churn_rate"], base["avg_lifetime_years"], base["lifetime_source"]) == (
        0.05,
        20.0,
        "cap",
    )
    assert rows[("segment", "x")]["lifetime_source"] == "cap"


def test_hand_case_group_rate_not_the_mean_of_customer_rates() -> None:
    """Six customers, min_group_size = 1, D = 2025-12-31 (a year ago: 2024-12-31).

    transactions (amount/cost → margin)
      X1 (x): 2024-06-01 only → active a year ago, churned at D (lost).
      Y1 (y): 2024-06-01 and 2025-06-01 1000/500 → 500.
      Y2 (y): 2024-09-01 and 2025-09-01 1200/500 → 700.
      Y3 (y): 2025-01-01 1000/430.857 → 569.143 (new; tenure 365 days, so N is not scaled).
      X2 (x): 2025-01-01 800/300 → 500 (new).
      P  (x): prospect (customers extract only).
    churn: base 1 lost of {X1, Y1, Y2} → r = 1/3; x: 1 of 1 → r = 1; y: 0 of 2 → base's 1/3.
    Each customer's CLV r: Y1, Y2, Y3 → 1/3, X2 → 1; their mean is 0.5 (T = 2), which the
    old equity used: 2,269.143 · PVIFA(8 %, 2) = 2,269.143 · 1.783265 = 4,046.48.
    SPEC §7 with the base's own r = 1/3 (T = 3): 4 active customers, Σ Q − C = 2,269.143,
    equity = 2,269.143 · (1 − 1.08^−3) / 0.08 = 2,269.143 · 2.577097 = 5,847.80.
    segment x: X2 alone, r = 1, T = 1: 500 / 1.08 = 462.96;
    segment y: Y1–Y3, base r 1/3: 1,769.143 · 2.577097 = 4,559.25.
    """
    settings = Settings(value=Value(min_group_size=1))
    tx = transactions(
        ("X1a", "X1", date(2024, 6, 1), 100.0, 50.0),
        ("Y1a", "Y1", date(2024, 6, 1), 100.0, 50.0),
        ("Y1b", "Y1", date(2025, 6, 1), 1000.0, 500.0),
        ("Y2a", "Y2", date(2024, 9, 1), 100.0, 50.0),
        ("Y2b", "Y2", date(2025, 9, 1), 1200.0, 500.0),
        ("Y3a", "Y3", date(2025, 1, 1), 1000.0, 430.857),
        ("X2a", "X2", date(2025, 1, 1), 800.0, 300.0),
    )
    customers = rows_of(
        CUSTOMER_SCHEMA,
        *(
            (c, date(2024, 1, 1), c[0].lower(), None, "active", None)
            for c in ("X1", "Y1", "Y2", "Y3", "X2")
        ),
        ("P", date(2025, 3, 1), "x", None, "active", None),
    ).with_columns(
        pl.lit(None, pl.String).alias("region"),
        pl.lit(None, pl.String).alias("risk_profile"),
        pl.lit(None, pl.Float64).alias("aum"),
    )
    inputs = outputs.Inputs(tx, customers, rows_of(WALLET_SCHEMA), rows_of(COST_SCHEMA))
    models = PurchaseModels(None, None, "weeks", "too few", "too few")
    tables = outputs.whole_base_tables(inputs, AS_OF, settings, models)
    churn = tables["churn"]
    equity = _rows(tables["customer_equity"].lazy())

    base_churn = churn.filter(pl.col("group_by") == "base").row(0, named=True)
    assert base_churn["churn_rate"] == pytest.approx(1 / 3)
    base = equity[("base", "all")]
    assert base["churn_rate"] == base_churn["churn_rate"]  # the same number, not a mean
    assert base["customers"] == 4
    assert base["avg_lifetime_years"] == pytest.approx(3.0)
    assert base["customer_equity"] == pytest.approx(5847.80, abs=0.005)
    assert equity[("segment", "x")]["churn_rate"] == 1.0
    assert equity[("segment", "x")]["customer_equity"] == pytest.approx(462.96, abs=0.005)
    y = equity[("segment", "y")]
    assert (y["churn_rate"], y["lifetime_source"]) == (base_churn["churn_rate"], "base")
    assert y["customer_equity"] == pytest.approx(4559.25, abs=0.005)
