"""SPEC §11 retention economics on the source's two-firm example, computed by hand."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from customer_equity.transforms.retention import (
    ACQUIRED_IN_BASE,
    acquisition_costs,
    acquisition_partials,
    retention_economics,
)

AS_OF = date(2025, 12, 31)
MAX_LIFETIME = 20.0  # r is floored at 1 / 20 = 5 %


def _pvifa(i: float, years: float) -> float:
    return (1 - (1 + i) ** -years) / i


def _two_firms() -> pl.LazyFrame:
    """Two groups of 100 active customers, each earning 100 a year, i = 8 %."""
    return pl.LazyFrame(
        {
            "group_by": ["base", "segment", "segment"],
            "group_value": ["all", "churny", "loyal"],
            "customers": [200, 100, 100],
            "churn_rate": [0.15, 0.20, 0.10],
            "avg_lifetime_years": [1 / 0.15, 5.0, 10.0],
            "avg_annual_contribution": [100.0, 100.0, 100.0],
            "discount_rate": [0.08] * 3,
            "customer_equity": [
                200 * 100 * _pvifa(0.08, 1 / 0.15),
                100 * 100 * _pvifa(0.08, 5),
                100 * 100 * _pvifa(0.08, 10),
            ],
        }
    )


def _acquired() -> pl.LazyFrame:
    """Customers of both firms: new ones (first purchase in the last 365 days) and old ones."""
    return pl.LazyFrame(
        {
            "customer_id": ["c1", "c2", "old", "l1", "prospect"],
            "segment": ["churny", "churny", "churny", "loyal", "loyal"],
            "first_purchase_date": [
                date(2025, 1, 1),  # D − 364: the first day of the window
                date(2025, 12, 31),
                date(2024, 12, 31),  # D − 365: acquired before the window
                date(2025, 6, 1),
                None,  # never bought: not acquired
            ],
            "acquisition_cost": [40.0, 60.0, 500.0, 50.0, 999.0],
        }
    )


def test_the_two_firm_example() -> None:
    """SPEC §11 by hand (100 customers each, Q − C = 100 a year, i = 8 %, floor r = 5 %).

    churny, r = 20 %: lifetime 5 years; replacements 0.20 × 100 = 20 a year; acquisition
    cost per new customer (40 + 60) / 2 = 50 ('old' was acquired 365 days before D, outside
    the window) → 20 × 50 = 1,000 a year.
    loyal, r = 10 %: lifetime 10 years; replacements 10 a year × 50 = 500 a year: half.
    Equity = 100 × 100 × PVIFA(8 %, 1 / r), PVIFA(i, T) = (1 − 1.08^−T) / 0.08:
      churny  r 20 %: T 5       PVIFA 3.99271 → 39,927.10
              r 15 %: T 6.6667  PVIFA 5.01684 → 50,168.41  (− 5 points)
              r 10 %: T 10      PVIFA 6.71008 → 67,100.81  (− 10 points)
              r 25 %: T 4       PVIFA 3.31213 → 33,121.27  (+ 5 points)
              r 19 %: T 5.2632  PVIFA 4.16327 → 41,632.74  → one point = 1,705.64
      loyal   r 10 %: 67,100.81; r 5 %: T 20, PVIFA 9.81815 → 98,181.47 (− 5 points);
              r 0 % is floored at 5 % → 98,181.47 (− 10 points); r 15 % → 50,168.41;
              r 9 %: T 11.111, PVIFA 7.18461 → 71,846.12 → one point = 4,745.31.
    """
    acquisitions = acquisition_costs(
        acquisition_partials(_acquired(), AS_OF, {"segment": "segment"})
    )
    table = retention_economics(_two_firms(), acquisitions, MAX_LIFETIME).collect()
    rows = {r["group_value"]: r for r in table.to_dicts()}
    churny, loyal = rows["churny"], rows["loyal"]

    assert churny["replacements_per_year"] == pytest.approx(20)
    assert loyal["replacements_per_year"] == pytest.approx(10)
    assert churny["customers_acquired"] == 2 and loyal["customers_acquired"] == 1
    assert churny["acquisition_cost_per_customer"] == pytest.approx(50.0)
    assert churny["replacement_cost_per_year"] == pytest.approx(1_000.0)
    assert loyal["replacement_cost_per_year"] == pytest.approx(500.0)
    assert churny["replacement_cost_per_year"] == 2 * loyal["replacement_cost_per_year"]

    expected = {
        "churny": (39_927.10, 50_168.41, 67_100.81, 33_121.27, 1_705.64),
        "loyal": (67_100.81, 98_181.47, 98_181.47, 50_168.41, 4_745.31),
    }
    columns = (
        "customer_equity",
        "equity_churn_minus_5pts",
        "equity_churn_minus_10pts",
        "equity_churn_plus_5pts",
        "equity_per_churn_point",
    )
    for group, figures in expected.items():
        for column, figure in zip(columns, figures, strict=True):
            assert rows[group][column] == pytest.approx(figure, abs=0.01), (group, column)

    base = rows["all"]
    assert base["customers_acquired"] == 3
    assert base["acquisition_cost_per_customer"] == pytest.approx((40 + 60 + 50) / 3)
    assert base["replacements_per_year"] == pytest.approx(30)


def test_a_group_without_new_customers_takes_the_base_cost_and_no_costs_give_null() -> None:
    equity = _two_firms()
    only_churny = _acquired().filter(pl.col("segment") == "churny")
    table = retention_economics(
        equity,
        acquisition_costs(acquisition_partials(only_churny, AS_OF, {"segment": "segment"})),
        MAX_LIFETIME,
    ).collect()
    loyal = table.filter(pl.col("group_value") == "loyal").row(0, named=True)
    assert loyal["customers_acquired"] == 0
    assert loyal["acquisition_cost_source"] == ACQUIRED_IN_BASE
    assert loyal["acquisition_cost_per_customer"] == pytest.approx(50.0)  # the base's (40+60)/2

    without_costs = _acquired().with_columns(
        pl.lit(None, dtype=pl.Float64).alias("acquisition_cost")
    )
    table = retention_economics(
        equity,
        acquisition_costs(acquisition_partials(without_costs, AS_OF, {"segment": "segment"})),
        MAX_LIFETIME,
    ).collect()
    assert table["acquisition_cost_per_customer"].null_count() == table.height
    assert table["replacement_cost_per_year"].null_count() == table.height
    assert table["acquisition_cost_source"].null_count() == table.height
    # The equity side does not need costs.
    assert table["equity_per_churn_point"].null_count() == 0


def test_no_acquisitions_at_all_keeps_every_group() -> None:
    nobody = _acquired().filter(pl.col("first_purchase_date").is_null())
    acquisitions = acquisition_costs(acquisition_partials(nobody, AS_OF, {"segment": "segment"}))
    table = retention_economics(_two_firms(), acquisitions, MAX_LIFETIME).collect()
    assert table.height == 3
    assert table["customers_acquired"].to_list() == [0, 0, 0]


def test_inputs_are_not_mutated() -> None:
    equity = _two_firms().collect()
    retention_economics(
        equity.lazy(),
        acquisition_costs(acquisition_partials(_acquired(), AS_OF, {"segment": "segment"})),
        MAX_LIFETIME,
    ).collect()
    assert equity.equals(_two_firms().collect())
