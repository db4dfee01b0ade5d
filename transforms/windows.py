"""Periods as of a date, defined once (SPEC §3 window W, §5 decline halves, wallet overlap).

All periods are closed intervals of whole days: the window of `days` days ending
on D runs from D − (days − 1) to D, both included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

# A year, wherever the rules say one: window W, the churn look-back, annualising.
DAYS_PER_YEAR = 365


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def contains(self, column: str) -> pl.Expr:
        return pl.col(column).is_between(self.start, self.end, closed="both")

    def overlap_days(self, start: str, end: str) -> pl.Expr:
        """Days shared by this period and each row's [start, end] (0 when disjoint)."""
        first = pl.max_horizontal(pl.col(start), pl.lit(self.start))
        last = pl.min_horizontal(pl.col(end), pl.lit(self.end))
        return pl.max_horizontal((last - first).dt.total_days() + 1, pl.lit(0))


def trailing(as_of: date, days: int) -> Period:
    """The `days` days ending on (and including) `as_of` (SPEC §3 window W)."""
    return Period(as_of - timedelta(days=days - 1), as_of)


def preceding(period: Period, days: int) -> Period:
    """The `days` days just before `period` (the earlier half of SPEC §5's decline test)."""
    return trailing(period.start - timedelta(days=1), days)


def up_to(frame: pl.LazyFrame, column: str, as_of: date) -> pl.LazyFrame:
    """Point-in-time cut: only rows dated on or before D ever reach a snapshot of D."""
    return frame.filter(pl.col(column) <= as_of)


def days_between(earlier: pl.Expr, later: pl.Expr | date) -> pl.Expr:
    later_expr = pl.lit(later) if isinstance(later, date) else later
    return (later_expr - earlier).dt.total_days()


def annualisation_factor(tenure_days: pl.Expr, window_days: int, floor_days: int) -> pl.Expr:
    """Years-per-observation multiplier: observed over min(W, tenure), never fewer than the floor.

    SPEC §3: a week-old customer is annualised as if observed for `floor_days`,
    so one order does not become 52 a year.
    """
    observed = pl.min_horizontal(tenure_days, pl.lit(window_days)).clip(lower_bound=floor_days)
    return DAYS_PER_YEAR / observed
