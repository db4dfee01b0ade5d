"""Money sums that do not depend on row order.

Floating-point addition is not associative, so a plain `sum()` over rows
that joins and parallel group-bys deliver in varying order differs in the last
bits from run to run, and a re-run would not reproduce its outputs. Amounts
are summed as integers of 1/10,000 of the currency unit (exact, any order)
and turned back into DOUBLE once.
"""

from __future__ import annotations

import polars as pl

UNITS_PER_CURRENCY = 10_000


def money_sum(expr: pl.Expr) -> pl.Expr:
    """Σ expr, exact to 1/10,000 and independent of the order of the rows."""
    units = (expr * UNITS_PER_CURRENCY).round(0).cast(pl.Int64)
    return units.sum() / UNITS_PER_CURRENCY


def money_mean(expr: pl.Expr) -> pl.Expr:
    """Mean of expr over its non-null values, from an order-independent sum."""
    count = expr.count()
    return pl.when(count > 0).then(money_sum(expr) / count)
