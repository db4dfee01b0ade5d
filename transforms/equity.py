"""Customer equity of a group (客户群体终生价值), the source's four steps (SPEC §7).

1. churn rate r of the group; 2. average lifetime T = 1 / r; 3. the group's
average annual net contribution (Q − C) over its active customers; 4. CLV per
customer = (Q − C) · PVIFA(i, T) and equity = CLV × active customers.
The source assumes lost customers are replaced by new ones of the same volume.
"""

from __future__ import annotations

import polars as pl

from transforms.money import money_mean, rate_mean
from transforms.value import pvifa


def customer_equity(valued: pl.LazyFrame, group_columns: dict[str, str]) -> pl.LazyFrame:
    """One row per group value for the whole base and each `group_by -> column`.

    `valued` is per customer with: churned, is_prospect, annual_contribution,
    churn_rate and discount_rate (as used for that customer's CLV), and the
    grouping columns. A group's r is the mean r of its active customers —
    for a segment that is the segment's own (or fallback) r; for a value tier
    it mixes the segments the tier holds.
    """
    active = valued.filter(~pl.col("churned") & ~pl.col("is_prospect"))
    groupings = {"base": pl.lit("all"), **{name: pl.col(c) for name, c in group_columns.items()}}
    tables = [
        active.group_by(
            pl.lit(name).alias("group_by"), expr.cast(pl.String).alias("group_value")
        ).agg(
            pl.len().cast(pl.Int64).alias("customers"),
            rate_mean(pl.col("churn_rate")).alias("churn_rate"),
            money_mean(pl.col("annual_contribution")).alias("avg_annual_contribution"),
            pl.col("discount_rate").first().alias("discount_rate"),
        )
        for name, expr in groupings.items()
    ]
    lifetime = 1.0 / pl.col("churn_rate")
    return (
        pl.concat(tables)
        .with_columns(lifetime.alias("avg_lifetime_years"))
        .with_columns(pvifa(pl.col("discount_rate"), pl.col("avg_lifetime_years")).alias("pvifa"))
        .with_columns(
            (pl.col("avg_annual_contribution") * pl.col("pvifa")).alias("clv_per_customer")
        )
        .with_columns((pl.col("clv_per_customer") * pl.col("customers")).alias("customer_equity"))
        .sort("group_by", "group_value", nulls_last=True)
    )
