"""Customer equity of a group (客户群体终生价值), the source's four steps (SPEC §7).

1. churn rate r of the group; 2. average lifetime T = 1 / r; 3. the group's
average annual net contribution (Q − C) over its active customers; 4. CLV per
customer = (Q − C) · PVIFA(i, T) and equity = CLV × active customers.
The source assumes lost customers are replaced by new ones of the same volume.

Which r (step 1):
* the whole base and each segment: the group's own r from the `churn` table
  (SPEC §4) — the same number as there — with the fallbacks of SPEC §6 (a
  segment too small or without churn a year ago takes the base's r; T is
  capped at max_lifetime_years); `lifetime_source` says which applied;
* a value tier has no history a year ago (tiers are assigned as of D, and
  every member is active by construction), so it has no §4 rate of its own:
  its r is the mean of the r used for its active members' CLVs
  (`lifetime_source` = `members`). A tier of one segment thus gets that
  segment's r; a tier mixing segments gets the customer-weighted mix.
"""

from __future__ import annotations

import polars as pl

from customer_equity.settings import Value
from customer_equity.transforms.money import (
    money_from_units,
    money_units,
    rate_from_units,
    rate_units,
)
from customer_equity.transforms.value import base_lifetime, pvifa, with_group_lifetimes

MEMBERS = "members"
BASE = "base"


def equity_partials(
    valued: pl.LazyFrame,
    group_columns: tuple[str, ...] = ("segment", "value_tier"),
) -> pl.LazyFrame:
    """Per group value, the sums behind steps 1 and 3 for one set of customers.

    `valued` is per customer with: churned, is_prospect, annual_contribution,
    churn_rate (the r of the customer's CLV, customer_value) and the grouping
    columns. Only active customers count. Sums are exact integers (money and
    rate units), so the partials of disjoint buckets add up to the whole
    base's. Columns: group_by, group_value, customers, contribution_units,
    contributions, churn_rate_units, churn_rates.
    """
    active = valued.filter(~pl.col("churned") & ~pl.col("is_prospect"))
    groupings = {BASE: pl.lit("all"), **{column: pl.col(column) for column in group_columns}}
    return pl.concat(
        [
            active.group_by(
                pl.lit(name).alias("group_by"), key.cast(pl.String).alias("group_value")
            ).agg(
                pl.len().cast(pl.Int64).alias("customers"),
                money_units(pl.col("annual_contribution")).alias("contribution_units"),
                pl.col("annual_contribution").count().cast(pl.Int64).alias("contributions"),
                rate_units(pl.col("churn_rate")).alias("churn_rate_units"),
                pl.col("churn_rate").count().cast(pl.Int64).alias("churn_rates"),
            )
            for name, key in groupings.items()
        ]
    )


def customer_equity(
    partials: pl.LazyFrame,
    churn_table: pl.LazyFrame,
    value: Value,
    discount_rate: float,
    *,
    observed_groups: tuple[str, ...] = ("segment",),
    member_groups: tuple[str, ...] = ("value_tier",),
) -> pl.LazyFrame:
    """One row per group value: the whole base, each `observed_groups` and `member_groups` column.

    `partials` are `equity_partials` rows of every bucket (summed here).
    `churn_table` is the `churn` table of the same date; an observed group must
    be one of its `group_by` values (or is unseen: base's r).
    """
    summed = (
        partials.group_by("group_by", "group_value")
        .agg(pl.col("customers", "contribution_units", "contributions").sum())
        .with_columns(
            pl.when(pl.col("contributions") > 0)
            .then(money_from_units(pl.col("contribution_units")) / pl.col("contributions"))
            .alias("avg_annual_contribution")
        )
        .drop("contribution_units", "contributions")
    )
    rates = partials.group_by("group_by", "group_value").agg(
        pl.col("churn_rate_units", "churn_rates").sum()
    )

    def of(grouping: str) -> pl.LazyFrame:
        return summed.filter(pl.col("group_by") == grouping)

    base = of(BASE).join(base_lifetime(churn_table, value), how="cross")
    observed = [
        with_group_lifetimes(of(column), "group_value", churn_table, value, column)
        for column in observed_groups
    ]
    members = [
        of(column)
        .join(rates, on=["group_by", "group_value"], how="left", nulls_equal=True)
        .with_columns(
            rate_from_units(pl.col("churn_rate_units"), pl.col("churn_rates")).alias("churn_rate")
        )
        .drop("churn_rate_units", "churn_rates")
        .with_columns(
            (1.0 / pl.col("churn_rate")).alias("expected_lifetime_years"),
            pl.lit(MEMBERS).alias("lifetime_source"),
            pl.format(
                "mean r of the {} customers' lifetime values (a tier has no history)",
                "customers",
            ).alias("lifetime_reason"),
        )
        for column in member_groups
    ]
    return (
        pl.concat([base, *observed, *members], how="diagonal")
        .rename({"expected_lifetime_years": "avg_lifetime_years"})
        .with_columns(
            pl.lit(discount_rate).alias("discount_rate"),
            pvifa(discount_rate, pl.col("avg_lifetime_years")).alias("pvifa"),
        )
        .with_columns(
            (pl.col("avg_annual_contribution") * pl.col("pvifa")).alias("clv_per_customer")
        )
        .with_columns((pl.col("clv_per_customer") * pl.col("customers")).alias("customer_equity"))
        .sort("group_by", "group_value", nulls_last=True)
    )
