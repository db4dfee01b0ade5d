"""SPEC §7 customer equity: the four steps on a hand-computed group."""

from __future__ import annotations

import polars as pl
import pytest

from transforms.equity import customer_equity


def test_four_steps_per_group() -> None:
    valued = pl.LazyFrame(
        {
            "customer_id": ["a", "b", "c", "gone", "prospect"],
            "segment": ["x", "x", "y", "x", "x"],
            "churned": [False, False, False, True, False],
            "is_prospect": [False, False, False, False, True],
            "annual_contribution": [100.0, 300.0, 50.0, 999.0, None],
            "churn_rate": [0.2, 0.2, 0.1, 0.2, 0.2],
            "discount_rate": [0.08] * 5,
        }
    )
    rows = {
        (r["group_by"], r["group_value"]): r
        for r in customer_equity(valued, {"segment": "segment"}).collect().to_dicts()
    }
    x = rows[("segment", "x")]
    factor = (1 - 1.08**-5) / 0.08
    assert x["customers"] == 2  # churned and prospects are not in the base
    assert x["avg_lifetime_years"] == pytest.approx(5.0)  # r = 20 % → 5 years
    assert x["avg_annual_contribution"] == pytest.approx(200.0)
    assert x["clv_per_customer"] == pytest.approx(200 * factor)
    assert x["customer_equity"] == pytest.approx(2 * 200 * factor)
    assert rows[("segment", "y")]["avg_lifetime_years"] == pytest.approx(10.0)  # r = 10 %
    base = rows[("base", "all")]
    assert base["customers"] == 3
    assert base["customer_equity"] == pytest.approx(
        3 * (450 / 3) * (1 - 1.08 ** -(1 / ((0.2 + 0.2 + 0.1) / 3))) / 0.08
    )
