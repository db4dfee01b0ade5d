"""SPEC §6 seed and retention methods against hand arithmetic and the SPEC's worked numbers."""

from __future__ import annotations

import polars as pl
import pytest

from customer_equity.settings import Value
from customer_equity.transforms.value import (
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


def test_lifetime_source_names_the_rate_actually_used() -> None:
    """Issue 9.5: `segment`, `base` or `cap`, whichever gave r; the reason says why.

    seen (150 of 500 at start lost 30): own r 0.2; small (5 at start): base r 0.25;
    unseen (a segment nobody of whom was active a year ago): base r 0.25.
    """
    churn = _churn(
        [("base", "all", 500, 0.25), ("segment", "seen", 150, 0.2), ("segment", "small", 5, 0.4)]
    )
    customers = pl.LazyFrame(
        {
            "customer_id": ["s", "m", "u"],
            "segment": ["seen", "small", "unseen"],
            "churned": [False] * 3,
            "is_prospect": [False] * 3,
            "annual_contribution": [100.0] * 3,
            "estimated_annual_margin": [None] * 3,
            "acquisition_cost": [None] * 3,
        },
        schema_overrides={"estimated_annual_margin": pl.Float64, "acquisition_cost": pl.Float64},
    )
    rows = {
        row["customer_id"]: row
        for row in lifetime_values(customers, churn, Value(), 0.08).collect().to_dicts()
    }
    assert [(rows[c]["lifetime_source"], rows[c]["churn_rate"]) for c in "smu"] == [
        ("segment", 0.2),
        ("base", 0.25),
        ("base", 0.25),
    ]
    assert "5 customers" in rows["m"]["lifetime_reason"]
    assert "a year ago" in rows["u"]["lifetime_reason"]


def test_nobody_active_a_year_ago_is_the_cap_not_the_base() -> None:
    """CDNOW as of 1997-09-30: the base rate is null (no one to lose); T = the 20-year cap.

    Every customer's segment is unseen a year ago, and the base cannot stand in:
    the source is `cap`, never "base (group unseen a year ago)".
    """
    churn = _churn([("base", "all", 0, None)])
    customers = pl.LazyFrame(
        {
            "customer_id": ["a", "b"],
            "segment": [None, "x"],
            "churned": [False, False],
            "is_prospect": [False, False],
            "annual_contribution": [100.0, 50.0],
            "estimated_annual_margin": [None, None],
            "acquisition_cost": [None, None],
        },
        schema_overrides={
            "segment": pl.String,
            "estimated_annual_margin": pl.Float64,
            "acquisition_cost": pl.Float64,
        },
    )
    rows = lifetime_values(customers, churn, Value(max_lifetime_years=20), 0.08).collect()
    assert rows["lifetime_source"].to_list() == ["cap", "cap"]
    assert rows["expected_lifetime_years"].to_list() == [20.0, 20.0]
    assert all("max_lifetime_years" in reason for reason in rows["lifetime_reason"])


def test_every_seed_method_is_null_together_for_a_prospect_without_an_estimate() -> None:
    """Issue 9.6: a prospect without a wallet has no estimate: annuity, year-by-year and
    retention CLV are all null (the year-by-year sum used to read 0.0)."""
    churn = _churn([("base", "all", 100, 0.2)])
    customers = pl.LazyFrame(
        {
            "customer_id": ["p"],
            "segment": ["x"],
            "churned": [False],
            "is_prospect": [True],
            "annual_contribution": [None],
            "estimated_annual_margin": [None],
            "acquisition_cost": [None],
        },
        schema_overrides={
            "annual_contribution": pl.Float64,
            "estimated_annual_margin": pl.Float64,
            "acquisition_cost": pl.Float64,
        },
    )
    (row,) = lifetime_values(customers, churn, Value(), 0.08).collect().to_dicts()
    assert (row["clv_annuity"], row["clv_projection"], row["clv_retention"]) == (None, None, None)
    assert row["worth_acquiring"] is None
