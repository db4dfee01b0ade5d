"""SPEC §6 seed and retention methods against hand arithmetic and the SPEC's worked numbers."""

from __future__ import annotations

import polars as pl
import pytest

from customer_equity.settings import Value
from transforms.value import (
    group_lifetimes,
    lifetime_values,
    projected_value,
    pvifa,
    retention_value,
)


def _eval(expr: pl.Expr, **columns: list[float]) -> list[float]:
    return pl.DataFrame(columns).select(expr).to_series().to_list()


def test_pvifa_matches_the_spec_example() -> None:
    # r = 20 % → T = 5; i = 8 %: (1 − 1.08^−5) / 0.08 = 3.99271
    (factor,) = _eval(pvifa(0.08, pl.col("t")), t=[5.0])
    assert factor == pytest.approx((1 - 1.08**-5) / 0.08)
    assert round(factor, 3) == 3.993


def test_pvifa_for_real_valued_lifetime_lies_between_whole_years() -> None:
    low, mid, high = _eval(pvifa(0.08, pl.col("t")), t=[4.0, 4.5, 5.0])
    assert low < mid < high


def test_retention_method_spec_and_gupta_lehmann_numbers() -> None:
    (spec,) = _eval(retention_value(pl.col("m"), pl.col("r"), 0.08), m=[1.0], r=[0.2])
    assert round(spec, 3) == 2.857  # 0.8 / (1.08 − 0.8)
    (published,) = _eval(retention_value(pl.col("m"), pl.col("r"), 0.10), m=[100.0], r=[0.2])
    assert published == pytest.approx(266.67, abs=0.005)  # Gupta & Lehmann: ρ = 0.8, i = 10 %


def test_year_by_year_projection() -> None:
    whole, part = _eval(
        projected_value(pl.col("c"), 0.08, pl.col("t"), horizon=10), c=[100.0, 100.0], t=[5.0, 2.5]
    )
    assert whole == pytest.approx(100 * (1 - 1.08**-5) / 0.08)  # = closed form for whole T
    assert part == pytest.approx(100 / 1.08 + 100 / 1.08**2 + 50 / 1.08**3)
    (cut,) = _eval(projected_value(pl.col("c"), 0.08, pl.col("t"), horizon=2), c=[100.0], t=[5.0])
    assert cut == pytest.approx(100 / 1.08 + 100 / 1.08**2)  # nothing beyond the horizon


def _churn(rows: list[tuple[str, str | None, int, float | None]]) -> pl.LazyFrame:
    return pl.LazyFrame(
        [
            {"group_by": g, "group_value": v, "customers_at_start": n, "churn_rate": r}
            for g, v, n, r in rows
        ]
    )


def test_group_lifetimes_fall_back_and_cap() -> None:
    churn = _churn(
        [
            ("base", "all", 500, 0.25),
            ("segment", "retail", 200, 0.20),  # own r
            ("segment", "tiny", 10, 0.50),  # < min_group_size → base
            ("segment", "loyal", 100, 0.0),  # no churn → base
            ("segment", "sticky", 100, 0.01),  # T = 100 years → capped at 20
        ]
    )
    rows = {
        row["group_value"]: row
        for row in group_lifetimes(churn, Value(min_group_size=30)).collect().to_dicts()
    }
    assert rows["retail"]["churn_rate"] == 0.20 and rows["retail"]["expected_lifetime_years"] == 5
    assert rows["tiny"]["churn_rate"] == 0.25 and rows["tiny"]["lifetime_source"].startswith("base")
    assert rows["loyal"]["expected_lifetime_years"] == pytest.approx(4.0)
    assert rows["sticky"]["expected_lifetime_years"] == pytest.approx(20.0)
    assert rows["sticky"]["lifetime_source"].startswith("cap")


def test_a_base_without_churn_gets_the_capped_lifetime() -> None:
    churn = _churn([("base", "all", 50, 0.0), ("segment", "a", 50, 0.0)])
    (row,) = group_lifetimes(churn, Value(max_lifetime_years=20)).collect().to_dicts()
    assert (row["churn_rate"], row["expected_lifetime_years"]) == (0.05, 20.0)


def test_lifetime_values_per_customer() -> None:
    churn = _churn([("base", "all", 100, 0.2), ("segment", "retail", 100, 0.2)])
    customers = pl.LazyFrame(
        {
            "customer_id": ["active", "gone", "prospect", "cheap_prospect"],
            "segment": ["retail", "retail", "retail", "unseen"],
            "churned": [False, True, False, False],
            "is_prospect": [False, False, True, True],
            "annual_contribution": [100.0, 100.0, None, None],
            "estimated_annual_margin": [None, None, 50.0, 10.0],
            "acquisition_cost": [30.0, 30.0, 120.0, 60.0],
        }
    )
    rows = {
        row["customer_id"]: row
        for row in lifetime_values(customers, churn, Value(), 0.08).collect().to_dicts()
    }
    factor = (1 - 1.08**-5) / 0.08
    assert rows["active"]["clv_annuity"] == pytest.approx(100 * factor)  # no acquisition cost
    assert rows["active"]["clv_retention"] == pytest.approx(100 * 0.8 / 0.28)
    assert rows["gone"]["clv_annuity"] == 0.0 and rows["gone"]["clv_retention"] == 0.0
    assert rows["prospect"]["clv_annuity"] == pytest.approx(50 * factor - 120)
    assert rows["prospect"]["worth_acquiring"] is True  # 199.6 − 120 > 0
    assert rows["cheap_prospect"]["worth_acquiring"] is False  # 39.9 − 60 < 0
    assert rows["cheap_prospect"]["lifetime_source"].startswith("base")  # segment unseen
    assert rows["active"]["worth_acquiring"] is None
