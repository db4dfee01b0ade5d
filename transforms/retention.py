"""Retention economics (客户保持的经济价值, SPEC §11): what churn costs, in money.

The source's comparison: two firms of 100 customers, churn 20 % and 10 %,
live with them 5 and 10 years; to hold the base steady the first must win 20
new customers a year and the second 10, so the first spends twice as much on
acquisition. Per group (base, segment, value tier) as of D:

- `replacements_per_year` = r × active customers;
- `acquisition_cost_per_customer` = mean acquisition cost of the customers
  acquired (first purchase) in the 365 days ending on D; a group that
  acquired nobody takes the whole base's figure (`acquisition_cost_source`
  says which); null without a costs extract;
- `replacement_cost_per_year` = the product of the two;
- the §7 equity recomputed with r − 5, r − 10 and r + 5 points (r floored at
  1 / max lifetime, as every lifetime is, and capped at 1), and
  `equity_per_churn_point` = equity at r − 1 point minus equity at r: the
  number a manager weighs a retention budget against.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from customer_equity.transforms.churn import BASE_GROUP
from customer_equity.transforms.money import money_from_units, money_units
from customer_equity.transforms.value import pvifa
from customer_equity.transforms.windows import DAYS_PER_YEAR, trailing

ACQUISITION_WINDOW_DAYS = DAYS_PER_YEAR
ONE_POINT = 0.01
# Output column -> change of the churn rate r (SPEC §11's scenarios).
CHURN_SCENARIOS = {
    "equity_churn_minus_5pts": -0.05,
    "equity_churn_minus_10pts": -0.10,
    "equity_churn_plus_5pts": 0.05,
}
ACQUIRED_IN_GROUP = "group"
ACQUIRED_IN_BASE = (
    f"base (no customer acquired in the group in the last {ACQUISITION_WINDOW_DAYS} days)"
)


def acquisition_partials(
    customers: pl.LazyFrame,
    as_of: date,
    group_columns: dict[str, str],
    window_days: int = ACQUISITION_WINDOW_DAYS,
) -> pl.LazyFrame:
    """Per group, the customers acquired in the `window_days` ending on D and their costs' sums.

    `customers` is per customer with first_purchase_date, acquisition_cost
    (null when no costs extract exists) and the grouping columns. One row per
    group value of the whole base ("base", "all") and of each
    `group_by -> column`; groups that acquired nobody have no row. Sums are
    exact integer units, so the rows of disjoint customer buckets add up.
    Columns: group_by, group_value, customers_acquired, cost_units, costs.
    """
    acquired = customers.filter(trailing(as_of, window_days).contains("first_purchase_date"))
    groupings = {BASE_GROUP: pl.lit("all"), **{n: pl.col(c) for n, c in group_columns.items()}}
    return pl.concat(
        [
            acquired.group_by(
                pl.lit(name).alias("group_by"), expr.cast(pl.String).alias("group_value")
            ).agg(
                pl.len().cast(pl.Int64).alias("customers_acquired"),
                money_units(pl.col("acquisition_cost")).alias("cost_units"),
                pl.col("acquisition_cost").count().cast(pl.Int64).alias("costs"),
            )
            for name, expr in groupings.items()
        ]
    )


def acquisition_costs(partials: pl.LazyFrame) -> pl.LazyFrame:
    """Customers acquired in the window and their mean acquisition cost, per group.

    `partials` are `acquisition_partials` rows of every bucket (summed here).
    Columns: group_by, group_value, customers_acquired, acquisition_cost_per_customer.
    """
    summed = partials.group_by("group_by", "group_value").agg(
        pl.col("customers_acquired", "cost_units", "costs").sum()
    )
    return summed.select(
        "group_by",
        "group_value",
        "customers_acquired",
        pl.when(pl.col("costs") > 0)
        .then(money_from_units(pl.col("cost_units")) / pl.col("costs"))
        .alias("acquisition_cost_per_customer"),
    )


def equity_at_churn(churn_rate: pl.Expr, max_lifetime_years: float) -> pl.Expr:
    """SPEC §7 equity of a group at churn rate `churn_rate` (floored at 1 / max lifetime, ≤ 1).

    customers × (Q − C) × PVIFA(i, 1 / r), from a customer_equity row's columns.
    """
    rate = churn_rate.clip(1.0 / max_lifetime_years, 1.0)
    return (
        pl.col("customers")
        * pl.col("avg_annual_contribution")
        * pvifa(pl.col("discount_rate"), 1.0 / rate)
    )


def retention_economics(
    equity: pl.LazyFrame, acquisitions: pl.LazyFrame, max_lifetime_years: float
) -> pl.LazyFrame:
    """`retention_economics`: one row per row of the customer_equity table (SPEC §11).

    `equity` is the customer_equity table (group_by, group_value, customers,
    churn_rate, avg_lifetime_years, avg_annual_contribution, discount_rate,
    customer_equity); `acquisitions` is `acquisition_costs(...)`.
    """
    # At most one row; joined on a constant so that no acquisitions keeps every group.
    base_cost = acquisitions.filter(pl.col("group_by") == BASE_GROUP).select(
        pl.lit(True).alias("_base"),
        pl.col("acquisition_cost_per_customer").alias("base_acquisition_cost"),
    )
    r = pl.col("churn_rate")
    cost_known = pl.col("acquisition_cost_per_customer").is_not_null()
    return (
        equity.join(acquisitions, on=["group_by", "group_value"], how="left", nulls_equal=True)
        .with_columns(pl.lit(True).alias("_base"))
        .join(base_cost, on="_base", how="left")
        .with_columns(
            pl.col("customers_acquired").fill_null(0),
            pl.when(cost_known)
            .then(pl.lit(ACQUIRED_IN_GROUP))
            .when(pl.col("base_acquisition_cost").is_not_null())
            .then(pl.lit(ACQUIRED_IN_BASE))
            .alias("acquisition_cost_source"),
            pl.coalesce("acquisition_cost_per_customer", "base_acquisition_cost").alias(
                "acquisition_cost_per_customer"
            ),
            (r * pl.col("customers")).alias("replacements_per_year"),
        )
        .with_columns(
            (pl.col("replacements_per_year") * pl.col("acquisition_cost_per_customer")).alias(
                "replacement_cost_per_year"
            ),
            *(
                equity_at_churn(r + change, max_lifetime_years).alias(name)
                for name, change in CHURN_SCENARIOS.items()
            ),
            (
                equity_at_churn(r - ONE_POINT, max_lifetime_years)
                - equity_at_churn(r, max_lifetime_years)
            ).alias("equity_per_churn_point"),
        )
        .select(
            "group_by",
            "group_value",
            "customers",
            "churn_rate",
            "avg_lifetime_years",
            "replacements_per_year",
            "customers_acquired",
            "acquisition_cost_per_customer",
            "acquisition_cost_source",
            "replacement_cost_per_year",
            "customer_equity",
            *CHURN_SCENARIOS,
            "equity_per_churn_point",
        )
        .sort("group_by", "group_value", nulls_last=True)
    )


def acquisition_partials_of(
    metrics: pl.LazyFrame,
    tiers: pl.LazyFrame,
    as_of: date,
    rule_set: str,
    aum_tiers: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """`acquisition_partials` of a set of customers (customer_metrics and customer_tiers
    rows), grouped like customer_equity: base, segment, value tier of rule set `rule_set`
    and, with `aum_tiers` (customer_id, aum_tier: the run has holdings), AUM tier."""
    main_tiers = tiers.filter(pl.col("rule_set") == rule_set).select("customer_id", "value_tier")
    customers = metrics.select(
        "customer_id", "segment", "first_purchase_date", "acquisition_cost"
    ).join(main_tiers, on="customer_id", how="left")
    groups = {"segment": "segment", "value_tier": "value_tier"}
    if aum_tiers is not None:
        customers = customers.join(aum_tiers, on="customer_id", how="left")
        groups["aum_tier"] = "aum_tier"
    return acquisition_partials(customers, as_of, groups)
