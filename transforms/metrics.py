"""Per-customer purchase metrics as of D (SPEC §3).

Every function takes LazyFrames already cut to rows dated ≤ D (see
`windows.up_to`) and returns a new LazyFrame keyed by `customer_id`.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import polars as pl

from customer_equity.schemas.inputs import SERVE_COST_TYPES
from customer_equity.settings import Metrics
from customer_equity.transforms.money import money_mean, money_sum
from customer_equity.transforms.windows import Period, annualisation_factor, days_between


def costed_transactions(transactions: pl.LazyFrame, metrics: Metrics) -> pl.LazyFrame:
    """Transactions with `cost` filled where absent and `margin` = amount − cost (SPEC §2).

    A missing cost is amount × (1 − margin rate), the rate of the row's category
    where configured, else the default; `cost_imputed` says which rows.
    """
    rate = (
        pl.col("category").replace_strict(
            metrics.category_margin_rates,
            default=metrics.default_margin_rate,
            return_dtype=pl.Float64,
        )
        if metrics.category_margin_rates
        else pl.lit(metrics.default_margin_rate)
    )
    cost = pl.coalesce(pl.col("cost"), pl.col("amount") * (1.0 - rate))
    return transactions.with_columns(
        cost.alias("cost"), pl.col("cost").is_null().alias("cost_imputed")
    ).with_columns((pl.col("amount") - pl.col("cost")).alias("margin"))


def is_purchase() -> pl.Expr:
    """A purchase occasion: any transaction that is not a return (amount ≥ 0).

    Zero-value purchases (free items, fully discounted orders) are occasions in
    the repeat-purchase literature — CDNOW has eight — so they count for
    first/last purchase, purchase days and churn; `orders` still counts only
    amount > 0 as SPEC §3 says.
    """
    return pl.col("amount") >= 0


def purchase_days(transactions: pl.LazyFrame) -> pl.LazyFrame:
    """One row per customer and purchase day: the day's revenue and margin.

    Same-day purchases count once (SPEC §3 repeat-purchase summary); returns
    are not purchases.
    """
    return (
        transactions.filter(is_purchase())
        .group_by("customer_id", "transaction_date")
        .agg(
            money_sum(pl.col("amount")).alias("day_revenue"),
            money_sum(pl.col("margin")).alias("day_margin"),
        )
    )


def repeat_purchase_summary(
    transactions: pl.LazyFrame, as_of: date, monetary: Literal["margin", "revenue"] = "margin"
) -> pl.LazyFrame:
    """frequency / recency / T / monetary in days, as in the literature (SPEC §3).

    repeat_purchases = purchase days after the first; recency_days = first to
    last purchase day; age_days = first purchase day to D; monetary_value =
    mean value of the repeat purchase days (null when there are none).
    """
    value = "day_margin" if monetary == "margin" else "day_revenue"
    days = purchase_days(transactions)
    first = pl.col("transaction_date").min()
    return days.group_by("customer_id").agg(
        first.alias("first_purchase_date"),
        pl.col("transaction_date").max().alias("last_purchase_date"),
        (pl.len() - 1).cast(pl.Int64).alias("repeat_purchases"),
        days_between(first, pl.col("transaction_date").max()).alias("recency_days"),
        days_between(first, as_of).alias("age_days"),
        money_mean(pl.col(value).filter(pl.col("transaction_date") != first)).alias(
            "monetary_value"
        ),
    )


def window_metrics(transactions: pl.LazyFrame, window: Period) -> pl.LazyFrame:
    """orders, revenue, cost, gross margin, margin rate M and average order value in W."""
    in_window = transactions.filter(window.contains("transaction_date"))
    revenue = pl.col("revenue")
    return (
        in_window.group_by("customer_id")
        .agg(
            pl.col("transaction_id").filter(pl.col("amount") > 0).n_unique().alias("orders"),
            money_sum(pl.col("amount")).alias("revenue"),
            money_sum(pl.col("cost")).alias("cost"),
            money_sum(pl.col("margin")).alias("gross_margin"),
        )
        .with_columns(
            pl.when(revenue > 0).then(pl.col("gross_margin") / revenue).alias("margin_rate"),
            pl.when(pl.col("orders") > 0).then(revenue / pl.col("orders")).alias("avg_order_value"),
        )
    )


def annualised(metrics_frame: pl.LazyFrame, as_of: date, metrics: Metrics) -> pl.LazyFrame:
    """tenure, purchase frequency N and the annualisation factor behind it (SPEC §3).

    Without a first purchase on record (a customer known only from returns,
    who bought before the data starts) the tenure is unknown but at least as
    long as the data: the window is annualised as a whole.
    """
    tenure = days_between(pl.col("first_purchase_date"), as_of) + 1
    factor = annualisation_factor(
        tenure.fill_null(metrics.window_days), metrics.window_days, metrics.frequency_floor_days
    )
    return metrics_frame.with_columns(
        tenure.alias("tenure_days"), factor.alias("annualisation_factor")
    ).with_columns(
        (pl.col("orders") * pl.col("annualisation_factor")).alias("purchase_frequency"),
        (pl.col("gross_margin") * pl.col("annualisation_factor")).alias("annual_gross_margin"),
    )


def customer_costs(costs: pl.LazyFrame, window: Period) -> pl.LazyFrame:
    """serve_cost (development, retention, service, rebate in W) and acquisition_cost (all time).

    Acquisition is one-off, at the start, so it is never part of the yearly
    serve cost (SPEC §3).
    """
    in_window = window.contains("cost_date")
    return costs.group_by("customer_id").agg(
        money_sum(
            pl.col("amount").filter(in_window & pl.col("cost_type").is_in(SERVE_COST_TYPES))
        ).alias("serve_cost"),
        money_sum(pl.col("amount").filter(pl.col("cost_type") == "acquisition")).alias(
            "acquisition_cost"
        ),
    )


def cost_rows(costs: pl.LazyFrame) -> pl.LazyFrame:
    """One row: how many cost rows (dated ≤ D) there are; rows of buckets add up."""
    return costs.select(pl.len().cast(pl.Int64).alias("cost_rows"))


def with_known_costs(frame: pl.LazyFrame, cost_rows_seen: pl.LazyFrame) -> pl.LazyFrame:
    """serve_cost and acquisition_cost of 0 for customers without costs, when costs are known.

    Known = the costs extract has any row up to D (`cost_rows` of every
    bucket); without one both stay null, so nobody mistakes "unknown" for zero.
    """
    total = cost_rows_seen.select(pl.col("cost_rows").sum())
    return (
        frame.join(total, how="cross")
        .with_columns(
            pl.when(pl.col("cost_rows") > 0).then(pl.col(c).fill_null(0.0)).alias(c)
            for c in ("serve_cost", "acquisition_cost")
        )
        .drop("cost_rows")
    )


def annual_contribution(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Q − C = (gross margin − serve cost) in W, annualised like N (SPEC §3).

    Unknown serve costs (no costs extract) count as zero here; the
    `serve_cost` column itself stays null so nobody mistakes it for zero.
    """
    contribution = pl.col("gross_margin") - pl.col("serve_cost").fill_null(0.0)
    return frame.with_columns(
        (contribution * pl.col("annualisation_factor")).alias("annual_contribution")
    )
