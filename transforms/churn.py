"""Churn, churn rate and average lifetime (SPEC §4, 客户流失率, 客户生命周期)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from customer_equity.transforms.metrics import is_purchase
from customer_equity.transforms.windows import DAYS_PER_YEAR, days_between

BASE_GROUP = "base"


def last_activity(transactions: pl.LazyFrame) -> pl.LazyFrame:
    """Per customer with a transaction: the day of the last activity, as the churn rule reads it.

    That is the last purchase (amount ≥ 0, SPEC §4). A customer known only
    from returns bought before the data starts, so it is a customer, not a
    prospect; its last return is its last known activity. `transactions`
    needs customer_id, transaction_date and amount.
    """
    day = pl.col("transaction_date")
    return transactions.group_by("customer_id").agg(
        pl.coalesce(day.filter(is_purchase()).max(), day.max()).alias("last_activity_date")
    )


def churn_status(
    last_activities: pl.LazyFrame, customers: pl.LazyFrame, as_of: date, churn_after_days: int
) -> pl.LazyFrame:
    """Per customer: churned as of D, and days left before the inactivity rule would churn them.

    `last_activities` has customer_id, last_activity_date (see `last_activity`,
    dated ≤ D). Churned = last activity more than `churn_after_days` before D,
    or the relationship closed on or before D. Customers without any
    transaction are not churned (they are prospects).
    """
    closed = customers.filter(
        (pl.col("status") == "closed")
        & (pl.col("closed_date").is_null() | (pl.col("closed_date") <= as_of))
    ).select("customer_id", pl.lit(True).alias("closed"))
    days_since = days_between(pl.col("last_activity_date"), as_of)
    return (
        last_activities.select("customer_id", "last_activity_date")
        .join(closed, on="customer_id", how="full", coalesce=True)
        .with_columns(pl.col("closed").fill_null(False))
        .with_columns(
            days_since.alias("days_since_last_purchase"),
            (churn_after_days - days_since).alias("days_to_churn"),
            ((days_since > churn_after_days).fill_null(False) | pl.col("closed")).alias("churned"),
        )
        .select("customer_id", "days_since_last_purchase", "days_to_churn", "churned", "closed")
    )


def average_lifetime_years(churn_rate: pl.Expr) -> pl.Expr:
    """T = 1 / r (SPEC §4): 20 % → 5 years, 10 % → 10 years; null when nobody churned."""
    return pl.when(churn_rate > 0).then(1.0 / churn_rate)


def churn_cohort(
    transactions: pl.LazyFrame, customers: pl.LazyFrame, as_of: date, churn_after_days: int
) -> pl.LazyFrame:
    """The customers behind r (SPEC §4): active a year before D, and whether they are lost at D.

    active = a transaction by D − 365 and not churned then (by the rule of
    `churn_status`); lost = churned at D. `transactions` has customer_id,
    transaction_date and amount of rows dated ≤ D. Per customer only, so any
    subset of customers gives its share of the counts. Columns: customer_id, lost.
    """
    year_ago = as_of - timedelta(days=DAYS_PER_YEAR)

    def status_at(day: date) -> pl.LazyFrame:
        last = last_activity(transactions.filter(pl.col("transaction_date") <= day))
        return churn_status(last, customers, day, churn_after_days).join(
            last.select("customer_id"), on="customer_id", how="semi"
        )

    start = status_at(year_ago).filter(~pl.col("churned")).select("customer_id")
    end = status_at(as_of).select("customer_id", pl.col("churned").alias("lost"))
    return start.join(end, on="customer_id", how="left").with_columns(
        pl.col("lost").fill_null(False)
    )


def churn_counts(
    cohort: pl.LazyFrame, customers: pl.LazyFrame, group_columns: tuple[str, ...] = ("segment",)
) -> pl.LazyFrame:
    """customers_at_start and customers_lost for the whole base and per group (SPEC §4).

    Counts of any set of customers add up: the counts of disjoint customer
    buckets, concatenated, give the whole base's through `churn_table`.
    """
    attributes = customers.select("customer_id", *group_columns)
    grouped = cohort.join(attributes, on="customer_id", how="left")
    per_group = [
        grouped.group_by(
            pl.lit(column).alias("group_by"), pl.col(column).cast(pl.String).alias("group_value")
        ).agg(pl.len().alias("customers_at_start"), pl.col("lost").sum().alias("customers_lost"))
        for column in group_columns
    ]
    whole = grouped.select(
        pl.lit(BASE_GROUP).alias("group_by"),
        pl.lit("all").alias("group_value"),
        pl.len().alias("customers_at_start"),
        pl.col("lost").sum().alias("customers_lost"),
    )
    return pl.concat([whole, *per_group], how="vertical_relaxed").with_columns(
        pl.col("customers_at_start").cast(pl.Int64), pl.col("customers_lost").cast(pl.Int64)
    )


def churn_table(counts: pl.LazyFrame) -> pl.LazyFrame:
    """Churn rate r = lost / active a year ago and T = 1 / r per group (SPEC §4).

    `counts` are `churn_counts` rows, possibly several per group (one per
    customer bucket): they are summed first. Groups with an empty base get a
    null rate.
    """
    rate = pl.col("customers_lost") / pl.col("customers_at_start")
    return (
        counts.group_by("group_by", "group_value")
        .agg(pl.col("customers_at_start").sum(), pl.col("customers_lost").sum())
        .with_columns(pl.when(pl.col("customers_at_start") > 0).then(rate).alias("churn_rate"))
        .with_columns(average_lifetime_years(pl.col("churn_rate")).alias("avg_lifetime_years"))
        .sort("group_by", "group_value", nulls_last=True)
    )


def churn_rates(
    transactions: pl.LazyFrame,
    customers: pl.LazyFrame,
    as_of: date,
    churn_after_days: int,
    group_columns: tuple[str, ...] = ("segment",),
) -> pl.LazyFrame:
    """Churn rate r over the year ending D, for the whole base and per group (SPEC §4).

    The three steps above in one: who was active a year ago, the counts per
    group, the rate. `transactions` has customer_id, transaction_date and
    amount of rows dated ≤ D. Groups with an empty base get a null rate.
    """
    cohort = churn_cohort(transactions, customers, as_of, churn_after_days)
    return churn_table(churn_counts(cohort, customers, group_columns))
