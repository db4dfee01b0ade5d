"""Sums and means that do not depend on row order.

Floating-point addition is not associative, so a plain `sum()` over rows
that joins and parallel group-bys deliver in varying order differs in the last
bits from run to run, and a re-run would not reproduce its outputs. Values
are summed as integers of a fixed unit (exact, any order) and turned back into
DOUBLE once: money in 1/10,000 of the currency unit, rates (0 … 1) in 1e-9,
which leaves room for ten million customers in an Int64.
"""

from __future__ import annotations

import polars as pl

UNITS_PER_CURRENCY = 10_000
UNITS_PER_RATE = 1_000_000_000


def _units_sum(expr: pl.Expr, units: int) -> pl.Expr:
    return (expr * units).round(0).cast(pl.Int64).sum()


def _from_units(expr: pl.Expr, units: int) -> pl.Expr:
    # Multiply by the reciprocal rather than divide: Polars evaluates `x / literal`
    # either as a true division or as a multiplication depending on the plan, and
    # the two differ in the last bit; one fixed multiplication always gives the same.
    return expr.cast(pl.Float64) * (1.0 / units)


def _fixed_point_sum(expr: pl.Expr, units: int) -> pl.Expr:
    return _from_units(_units_sum(expr, units), units)


def _fixed_point_mean(expr: pl.Expr, units: int) -> pl.Expr:
    count = expr.count()
    return pl.when(count > 0).then(_fixed_point_sum(expr, units) / count)


def money_sum(expr: pl.Expr) -> pl.Expr:
    """Σ expr, exact to 1/10,000 and independent of the order of the rows."""
    return _fixed_point_sum(expr, UNITS_PER_CURRENCY)


def money_units(expr: pl.Expr) -> pl.Expr:
    """Σ expr as an exact Int64 count of 1/10,000 units: partial sums that add up exactly.

    A group total computed from per-bucket partials (`money_from_units` of the
    summed units) is bit-identical to `money_sum` over all rows at once.
    """
    return _units_sum(expr, UNITS_PER_CURRENCY)


def money_from_units(expr: pl.Expr) -> pl.Expr:
    """The money value of an Int64 count of 1/10,000 units (see `money_units`)."""
    return _from_units(expr, UNITS_PER_CURRENCY)


def money_mean(expr: pl.Expr) -> pl.Expr:
    """Mean of expr over its non-null values, from an order-independent sum."""
    return _fixed_point_mean(expr, UNITS_PER_CURRENCY)


def rate_sum(expr: pl.Expr) -> pl.Expr:
    """Σ of rates in [0, 1] (exact to 1e-9), independent of the order of the rows."""
    return _fixed_point_sum(expr, UNITS_PER_RATE)


def rate_mean(expr: pl.Expr) -> pl.Expr:
    """Mean of a rate in [0, 1] (exact to 1e-9), independent of the order of the rows."""
    return _fixed_point_mean(expr, UNITS_PER_RATE)


def rate_units(expr: pl.Expr) -> pl.Expr:
    """Σ of a rate in [0, 1] as an exact Int64 count of 1e-9 units (partial sums add up)."""
    return _units_sum(expr, UNITS_PER_RATE)


def rate_from_units(units: pl.Expr, count: pl.Expr) -> pl.Expr:
    """The mean rate of `count` values whose `rate_units` sum is `units` (as `rate_mean`)."""
    return pl.when(count > 0).then(_from_units(units, UNITS_PER_RATE) / count)
