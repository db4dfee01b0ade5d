"""Exact, order-independent sums and means (transforms/money.py), against Decimal arithmetic.

Why it matters, by hand: 0.1 + 0.2 + 0.3 in that order is 0.6000000000000001
in floating point (0.1 + 0.2 = 0.30000000000000004), in the reverse order
exactly 0.6, so a plain sum over rows that arrive in varying order changes
in the last bit between runs. As integers of 1/10,000 the sum is
1000 + 2000 + 3000 = 6000 units in any order, converted once: 0.6.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal

import polars as pl
import pytest

from customer_equity.transforms.money import (
    UNITS_PER_CURRENCY,
    UNITS_PER_RATE,
    money_from_units,
    money_mean,
    money_sum,
    money_units,
    rate_from_units,
    rate_mean,
    rate_units,
)

# Amounts with at most four decimals (cents and hundredths of cents), returns included.
AMOUNTS = [0.1, 0.2, 0.3, 1234.5678, -19.99, 0.0001, 99999.9999, 7.25, -0.3, 12.3456]


def _sum_of(values: list[float | None], expr: pl.Expr) -> float:
    return pl.DataFrame({"v": values}, schema={"v": pl.Float64}).select(expr).item()


def _orders(values: list[float], count: int = 20) -> list[list[float]]:
    rng = random.Random(7)
    return [rng.sample(values, len(values)) for _ in range(count)]


def test_the_hand_computed_case_a_float_sum_gets_wrong_in_the_last_bit() -> None:
    assert 0.1 + 0.2 + 0.3 == 0.6000000000000001
    assert 0.3 + 0.2 + 0.1 == 0.6
    for order in ([0.1, 0.2, 0.3], [0.3, 0.2, 0.1]):
        assert _sum_of(order, money_units(pl.col("v"))) == 6000
        assert _sum_of(order, money_sum(pl.col("v"))) == 0.6


def test_money_sum_is_the_same_in_every_row_order_and_exact_to_the_unit() -> None:
    exact = sum(Decimal(str(value)) for value in AMOUNTS)
    sums = {_sum_of(order, money_sum(pl.col("v"))) for order in _orders(AMOUNTS)}
    assert len(sums) == 1
    (total,) = sums
    assert _sum_of(AMOUNTS, money_units(pl.col("v"))) == int(exact * UNITS_PER_CURRENCY)
    # One conversion from exact units: within a rounding of the true decimal sum.
    assert abs(Decimal(total) - exact) < Decimal("1e-11")


def test_money_units_round_each_value_to_one_ten_thousandth() -> None:
    assert _sum_of([1.23456], money_units(pl.col("v"))) == 12346
    assert _sum_of([-1.23456], money_units(pl.col("v"))) == -12346
    assert _sum_of([0.00004], money_units(pl.col("v"))) == 0


def test_partial_sums_in_units_add_up_to_the_sum_over_all_rows_bit_for_bit() -> None:
    """What the bucket engine relies on: per-bucket units, summed, equal money_sum over all."""
    buckets = [AMOUNTS[:3], AMOUNTS[3:4], AMOUNTS[4:]]
    units = [_sum_of(bucket, money_units(pl.col("v"))) for bucket in buckets]
    combined = pl.DataFrame({"u": units}).select(money_from_units(pl.col("u").sum())).item()
    assert combined == _sum_of(AMOUNTS, money_sum(pl.col("v")))


def test_money_from_units_is_the_value_money_sum_gives_within_one_ulp_of_exact() -> None:
    # The conversion multiplies by 1/10,000 (one fixed operation, see money.py), so it
    # can be one ulp off the decimal value (-19.990000000000002): the same ulp every time.
    units = [6000, -199_900, 0, 123_456_789]
    converted = pl.DataFrame({"u": units}).select(money_from_units(pl.col("u"))).to_series()
    for unit, value in zip(units, converted, strict=True):
        exact = Decimal(unit) / UNITS_PER_CURRENCY
        assert value == _sum_of([float(exact)], money_sum(pl.col("v")))
        assert abs(Decimal(value) - exact) <= Decimal(math.ulp(float(exact)))


def test_nulls_are_left_out_and_a_mean_of_nothing_is_null() -> None:
    assert _sum_of([1.5, None, 2.25], money_sum(pl.col("v"))) == 3.75
    assert _sum_of([1.0, 2.0, None], money_mean(pl.col("v"))) == 1.5
    assert _sum_of([None, None], money_mean(pl.col("v"))) is None
    assert _sum_of([None], money_sum(pl.col("v"))) == 0.0


def test_money_mean_is_the_same_in_every_row_order() -> None:
    means = {_sum_of(order, money_mean(pl.col("v"))) for order in _orders(AMOUNTS)}
    assert len(means) == 1
    exact = sum(Decimal(str(value)) for value in AMOUNTS) / len(AMOUNTS)
    assert means.pop() == pytest.approx(float(exact), rel=1e-15)


RATES = [1 / 3, 0.2, 0.125, 2 / 3, 0.05, 1.0, 0.0, 0.1, 0.7]


def test_rate_units_are_billionths_and_rate_mean_is_order_independent() -> None:
    assert _sum_of([1 / 3], rate_units(pl.col("v"))) == 333_333_333
    assert _sum_of([2 / 3], rate_units(pl.col("v"))) == 666_666_667
    means = {_sum_of(order, rate_mean(pl.col("v"))) for order in _orders(RATES)}
    assert len(means) == 1
    units = sum(round(Decimal(rate) * UNITS_PER_RATE) for rate in RATES)
    assert means.pop() == pytest.approx(float(units) / UNITS_PER_RATE / len(RATES), rel=1e-15)


def test_rate_from_partial_units_equals_rate_mean_over_all_rows_bit_for_bit() -> None:
    buckets = [RATES[:4], RATES[4:5], RATES[5:]]
    partials = pl.DataFrame(
        {
            "units": [_sum_of(bucket, rate_units(pl.col("v"))) for bucket in buckets],
            "count": [len(bucket) for bucket in buckets],
        }
    )
    combined = partials.select(rate_from_units(pl.col("units").sum(), pl.col("count").sum())).item()
    assert combined == _sum_of(RATES, rate_mean(pl.col("v")))
    nobody = pl.DataFrame({"units": [0], "count": [0]})
    assert nobody.select(rate_from_units(pl.col("units"), pl.col("count"))).item() is None
