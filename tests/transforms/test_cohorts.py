"""SPEC §4 cohort retention triangle, worked by hand.

D = 2025-03-15. Purchase days:
  E: 2024-12-20, 2025-01-10              → cohort 2024-12
  A: 2025-01-05, 2025-01-20, 2025-03-01  → cohort 2025-01 (two January days count once)
  B: 2025-01-31                          → cohort 2025-01
  C: 2025-02-10, 2025-03-15 (= D)        → cohort 2025-02
  F: 2025-03-02                          → cohort 2025-03

Triangle (cohort size; active customers in calendar month cohort + k):
  2024-12: size 1 — k0 1 (E), k1 1 (E, across the year end), k2 0, k3 0
  2025-01: size 2 — k0 2, k1 0 (nobody in February), k2 1 (A)
  2025-02: size 1 — k0 1, k1 1 (C)
  2025-03: size 1 — k0 1
k runs up to D's month: 4 + 3 + 2 + 1 = 10 rows.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from customer_equity.schemas.outputs import conform
from customer_equity.settings import Settings
from customer_equity.transforms import outputs
from customer_equity.transforms.cohorts import cohort_retention
from tests.conftest import frame, transactions

D = date(2025, 3, 15)
PURCHASE_SCHEMA = {"customer_id": pl.String, "transaction_date": pl.Date}
PURCHASES = frame(
    [
        {"customer_id": c, "transaction_date": d}
        for c, d in [
            ("E", date(2024, 12, 20)),
            ("E", date(2025, 1, 10)),
            ("A", date(2025, 1, 5)),
            ("A", date(2025, 1, 20)),
            ("A", date(2025, 3, 1)),
            ("B", date(2025, 1, 31)),
            ("C", date(2025, 2, 10)),
            ("C", date(2025, 3, 15)),
            ("F", date(2025, 3, 2)),
        ]
    ],
    PURCHASE_SCHEMA,
)
DEC, JAN, FEB, MAR = date(2024, 12, 1), date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)

# (cohort_month, k, cohort_customers, active_customers)
EXPECTED = [
    (DEC, 0, 1, 1),
    (DEC, 1, 1, 1),
    (DEC, 2, 1, 0),
    (DEC, 3, 1, 0),
    (JAN, 0, 2, 2),
    (JAN, 1, 2, 0),
    (JAN, 2, 2, 1),
    (FEB, 0, 1, 1),
    (FEB, 1, 1, 1),
    (MAR, 0, 1, 1),
]


@pytest.fixture(scope="module")
def triangle() -> pl.DataFrame:
    return cohort_retention(PURCHASES, D).collect()


def test_cells_counts_and_order(triangle: pl.DataFrame) -> None:
    cells = triangle.select(
        "cohort_month", "months_since_first", "cohort_customers", "active_customers"
    ).rows()
    assert cells == EXPECTED


def test_shares_are_active_over_cohort_size(triangle: pl.DataFrame) -> None:
    assert triangle["active_share"].to_list() == pytest.approx(
        [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.5, 1.0, 1.0, 1.0]
    )
    assert triangle.filter(pl.col("months_since_first") == 0)["active_share"].to_list() == [1.0] * 4


def test_zero_cells_are_present_not_missing(triangle: pl.DataFrame) -> None:
    zeros = triangle.filter(pl.col("active_customers") == 0)
    assert zeros.select("cohort_month", "months_since_first").rows() == [
        (DEC, 2),
        (DEC, 3),
        (JAN, 1),
    ]
    assert zeros["active_share"].null_count() == 0


def test_k_stops_at_the_as_of_month(triangle: pl.DataFrame) -> None:
    last_k = (
        triangle.group_by("cohort_month")
        .agg(pl.col("months_since_first").max())
        .sort("cohort_month")
    )
    assert last_k.rows() == [
        (DEC, 3),
        (JAN, 2),
        (FEB, 1),
        (MAR, 0),
    ]  # all reach 2025-03, no further


def test_later_as_of_extends_every_cohort_with_zeros() -> None:
    """D = 2025-05-01: two more months (April, May) per cohort, nobody bought in them."""
    later = cohort_retention(PURCHASES, date(2025, 5, 1)).collect()
    rows = later.select(
        "cohort_month", "months_since_first", "cohort_customers", "active_customers"
    ).rows()
    added = [row for row in rows if row not in EXPECTED]
    assert [row for row in rows if row in EXPECTED] == EXPECTED  # earlier cells unchanged
    assert added == [
        (DEC, 4, 1, 0),
        (DEC, 5, 1, 0),
        (JAN, 3, 2, 0),
        (JAN, 4, 2, 0),
        (FEB, 2, 1, 0),
        (FEB, 3, 1, 0),
        (MAR, 1, 1, 0),
        (MAR, 2, 1, 0),
    ]
    assert later.height == 18  # 6 + 5 + 4 + 3


def test_dtypes_and_schema(triangle: pl.DataFrame) -> None:
    assert triangle.schema["cohort_month"] == pl.Date
    assert triangle.schema["months_since_first"] == pl.Int64
    assert conform("cohort_retention", triangle).height == 10


def test_outputs_ignores_returns_and_rows_after_d() -> None:
    """Via `outputs.cohort_retention`: a return is not a purchase, a row after D never counts.

    R only returned goods in January (no cohort); A's April purchase is after D
    and must not add a (JAN, k3) cell or an active customer.
    """
    inputs = outputs.Inputs(
        transactions=transactions(
            ("1", "A", date(2025, 1, 5), 10.0, 5.0),
            ("2", "A", date(2025, 3, 1), 10.0, 5.0),
            ("3", "B", date(2025, 1, 31), 10.0, 5.0),
            ("4", "R", date(2025, 1, 9), -10.0, -5.0),
            ("5", "A", date(2025, 4, 2), 10.0, 5.0),
        ),
        customers=pl.LazyFrame(schema={"customer_id": pl.String, "created_date": pl.Date}),
        wallets=pl.LazyFrame(schema={"customer_id": pl.String, "period_start": pl.Date}),
        costs=pl.LazyFrame(schema={"customer_id": pl.String, "cost_date": pl.Date}),
    )
    cells = outputs.cohort_retention(outputs.measure(inputs, D, Settings()).partials, D).collect()
    assert cells.select(
        "cohort_month", "months_since_first", "cohort_customers", "active_customers"
    ).rows() == [
        (JAN, 0, 2, 2),
        (JAN, 1, 2, 0),
        (JAN, 2, 2, 1),
    ]
