"""Cohort retention triangle (SPEC §4): per first-purchase month, who bought k months later."""

from __future__ import annotations

from datetime import date

import polars as pl


def _month_index(column: str | pl.Expr) -> pl.Expr:
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.dt.year().cast(pl.Int64) * 12 + expr.dt.month().cast(pl.Int64) - 1


def cohort_retention(purchase_dates: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """One row per (cohort month, k = 0 … months up to D), zero-activity cells included.

    `purchase_dates`: customer_id, transaction_date of purchases dated ≤ D.
    active_share = customers of the cohort who bought in calendar month
    cohort + k, over the cohort's size; k = 0 is 1 by construction.
    """
    as_of_month = as_of.year * 12 + as_of.month - 1
    months = purchase_dates.select(
        "customer_id", _month_index("transaction_date").alias("month")
    ).unique()
    cohorts = months.group_by("customer_id").agg(pl.col("month").min().alias("cohort"))
    activity = (
        months.join(cohorts, on="customer_id")
        .with_columns((pl.col("month") - pl.col("cohort")).alias("months_since_first"))
        .group_by("cohort", "months_since_first")
        .agg(pl.len().cast(pl.Int64).alias("active_customers"))
    )
    sizes = cohorts.group_by("cohort").agg(pl.len().cast(pl.Int64).alias("cohort_customers"))
    cells = sizes.with_columns(
        pl.int_ranges(0, as_of_month - pl.col("cohort") + 1).alias("months_since_first")
    ).explode("months_since_first")
    return (
        cells.with_columns(pl.col("months_since_first").cast(pl.Int64))
        .join(activity, on=["cohort", "months_since_first"], how="left")
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
