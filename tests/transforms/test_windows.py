"""Periods as of a date (transforms/windows.py): closed intervals of whole days, by hand.

D = 2025-12-31. The window W of 365 days runs 2025-01-01 … 2025-12-31 (D − 364
to D, both included); the 180 days before a period end the day before it starts.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from customer_equity.transforms.windows import (
    DAYS_PER_YEAR,
    Period,
    annualisation_factor,
    days_between,
    preceding,
    trailing,
    up_to,
)
from tests.conftest import AS_OF

DAY = timedelta(days=1)


def test_trailing_window_is_closed_and_has_exactly_its_days() -> None:
    window = trailing(AS_OF, DAYS_PER_YEAR)
    assert window == Period(date(2025, 1, 1), AS_OF)
    assert window.days == 365
    days = pl.DataFrame({"day": [window.start - DAY, window.start, AS_OF, AS_OF + DAY]})
    assert days.select(window.contains("day")).to_series().to_list() == [
        False,
        True,
        True,
        False,
    ]
    assert trailing(AS_OF, 1) == Period(AS_OF, AS_OF)


def test_preceding_period_ends_the_day_before_and_does_not_overlap() -> None:
    recent = trailing(AS_OF, 180)
    prior = preceding(recent, 180)
    assert recent == Period(date(2025, 7, 5), AS_OF)
    assert prior == Period(date(2025, 1, 6), date(2025, 7, 4))
    assert prior.days == recent.days == 180


@pytest.mark.parametrize(
    ("start", "end", "shared"),
    [
        (date(2024, 1, 1), date(2024, 12, 31), 0),  # ends the day before W: disjoint
        (date(2024, 7, 1), date(2025, 1, 1), 1),  # touches W on its first day
        (date(2025, 3, 1), date(2025, 3, 31), 31),  # inside W
        (date(2025, 12, 1), date(2026, 2, 28), 31),  # runs past D: only W's part counts
        (date(2020, 1, 1), date(2030, 1, 1), 365),  # covers W
        (date(2026, 1, 1), date(2026, 1, 31), 0),  # after D
    ],
)
def test_overlap_days_counts_the_days_shared_with_a_row_range(
    start: date, end: date, shared: int
) -> None:
    window = trailing(AS_OF, 365)
    rows = pl.DataFrame({"start": [start], "end": [end]})
    assert rows.select(window.overlap_days("start", "end")).item() == shared


@pytest.mark.parametrize(
    ("tenure_days", "factor"),
    [
        # SPEC §3: one order in a customer's first week is about 12 a year, not 52.
        (7, 365 / 30),
        (1, 365 / 30),
        (30, 365 / 30),
        (100, 365 / 100),
        (365, 1.0),
        (1000, 1.0),  # longer than W: observed over W only
    ],
)
def test_annualisation_factor_over_min_of_window_and_tenure_with_a_floor(
    tenure_days: int, factor: float
) -> None:
    tenure = pl.DataFrame({"tenure_days": [tenure_days]})
    result = tenure.select(annualisation_factor(pl.col("tenure_days"), 365, 30)).item()
    assert result == factor


def test_a_shorter_window_annualises_over_the_window() -> None:
    tenure = pl.DataFrame({"tenure_days": [400]})
    assert tenure.select(annualisation_factor(pl.col("tenure_days"), 90, 30)).item() == 365 / 90


def test_up_to_keeps_rows_on_and_before_d() -> None:
    rows = pl.LazyFrame({"day": [AS_OF - DAY, AS_OF, AS_OF + DAY]})
    assert up_to(rows, "day", AS_OF).collect()["day"].to_list() == [AS_OF - DAY, AS_OF]


def test_days_between_a_column_and_a_date_or_another_column() -> None:
    rows = pl.DataFrame({"first": [date(2025, 1, 1)], "last": [date(2025, 3, 1)]})
    assert rows.select(days_between(pl.col("first"), AS_OF)).item() == 364
    assert rows.select(days_between(pl.col("first"), pl.col("last"))).item() == 59
