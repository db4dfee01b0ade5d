"""Cohort retention triangle (SPEC §4): per first-purchase month, who bought k months later."""

from __future__ import annotations

from datetime import date

import polars as pl


def _month_index(column: str | pl.Expr) -> pl.Expr:
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.dt.year().cast(pl.Int64) * 12 + expr.dt.month().cast(pl.Int64) - 1


def cohort_activity(purchase_dates: pl.LazyFrame) -> pl.LazyFrame:
    """Customers of each first-purchase month active k calendar months later (SPEC §4).

    `purchase_dates`: customer_id, transaction_date of purchases dated ≤ D.
    Columns: cohort (month index), months_since_first, active_customers. Row
    k = 0 holds the cohort's size. Counts of disjoint customer sets add up, so
    per-bucket tables, concatenated, give the whole base's triangle.
    """
    months = purchase_dates.select(
        "customer_id", _month_index("transaction_date").alias("month")
    ).unique()
    cohorts = months.group_by("customer_id").agg(pl.col("month").min().alias("cohort"))
    return (
        months.join(cohorts, on="customer_id")
        .with_columns((pl.col("month") - pl.col("cohort")).alias("months_since_first"))
        .group_by("cohort", "months_since_first")
        .agg(pl.len().cast(pl.Int64).alias("active_customers"))
    )


def cohort_triangle(activity: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """One row per (cohort month, k = 0 … months up to D), zero-activity cells included.

    `activity`: `cohort_activity` rows, possibly several per cell (one per
    customer bucket). active_share = customers of the cohort who bought in
    calendar month cohort + k, over the cohort's size; k = 0 is 1 by construction.
    """
    as_of_month = as_of.year * 12 + as_of.month - 1
    cells_seen = activity.group_by("cohort", "months_since_first").agg(
        pl.col("active_customers").sum()
    )
    sizes = cells_seen.filter(pl.col("months_since_first") == 0).select(
        "cohort", pl.col("active_customers").alias("cohort_customers")
    )
    cells = sizes.with_columns(
        pl.int_ranges(0, as_of_month - pl.col("cohort") + 1).alias("months_since_first")
    ).explode("months_since_first")
    return (
        cells.with_columns(pl.col("months_since_first").cast(pl.Int64))
        .join(cells_seen, on=["cohort", "months_since_first"], how="left")
        .with_columns(pl.col("active_customers").fill_null(0))
        .with_columns(
            pl.date(pl.col("cohort") // 12, pl.col("cohort") % 12 + 1, 1).alias("cohort_month"),
            (pl.col("active_customers") / pl.col("cohort_customers")).alias("active_share"),
        )
        .select(
            "cohort_month",
            "months_since_first",
            "cohort_customers",
            "active_customers",
            "active_share",
        )
        .sort("cohort_month", "months_since_first")
    )


def cohort_retention(purchase_dates: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """The retention triangle of SPEC §4 from purchase dates (activity, then the triangle)."""
    return cohort_triangle(cohort_activity(purchase_dates), as_of)
