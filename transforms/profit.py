"""Profit decomposition per customer (SPEC §3, 客户为企业带来的总体利润).

A component is null when its input is absent — no category on the customer's
rows, no discount values, no referral data, no costs extract — never a
silent zero.
"""

from __future__ import annotations

import polars as pl

from customer_equity.transforms.metrics import is_purchase
from customer_equity.transforms.money import money_from_units, money_sum, money_units
from customer_equity.transforms.windows import Period


def core_category(transactions: pl.LazyFrame) -> pl.LazyFrame:
    """The category of the customer's first purchase: their core business (ties: larger amount)."""
    return (
        transactions.filter(is_purchase() & pl.col("category").is_not_null())
        .sort("transaction_date", "amount", "category", descending=[False, True, False])
        .group_by("customer_id")
        .agg(pl.col("category").first().alias("core_category"))
    )


def own_profit(transactions: pl.LazyFrame, window: Period) -> pl.LazyFrame:
    """basic_profit, cross_sell_profit, core_category and price_concessions in W, per customer.

    basic = margin in the core category, cross-sell = margin in other
    categories (关联销售), concessions = discounts granted (价格优惠); each
    null when its input is absent. One row per customer with rows in W
    (`active_in_window`, true).
    """
    in_window = transactions.filter(window.contains("transaction_date"))
    return (
        in_window.join(core_category(transactions), on="customer_id", how="left")
        .group_by("customer_id")
        .agg(
            money_sum(pl.col("margin").filter(pl.col("category") == pl.col("core_category"))).alias(
                "basic_profit"
            ),
            money_sum(pl.col("margin").filter(pl.col("category") != pl.col("core_category"))).alias(
                "cross_sell_profit"
            ),
            pl.col("core_category").first().alias("core_category"),
            money_sum(pl.col("discount")).alias("price_concessions"),
            pl.col("discount").is_not_null().any().alias("has_discount"),
            pl.lit(True).alias("active_in_window"),
        )
        .with_columns(
            pl.when(pl.col("core_category").is_not_null()).then(pl.col(c)).alias(c)
            for c in ("basic_profit", "cross_sell_profit")
        )
        .with_columns(
            pl.when(pl.col("has_discount"))
            .then(pl.col("price_concessions"))
            .alias("price_concessions")
        )
        .drop("has_discount")
    )


def referral_margin_units(
    transactions: pl.LazyFrame, customers: pl.LazyFrame, window: Period
) -> pl.LazyFrame:
    """Margin in W of referred customers, per referrer, as exact money units (partial sums).

    The referred customer's rows decide; the referrer may be anyone, so the
    units of every customer bucket are summed per referrer before use.
    Columns: customer_id (the referrer), referral_units.
    """
    in_window = transactions.filter(window.contains("transaction_date"))
    return (
        in_window.join(
            customers.select("customer_id", "referred_by").filter(
                pl.col("referred_by").is_not_null()
            ),
            on="customer_id",
        )
        .group_by(pl.col("referred_by").alias("customer_id"))
        .agg(money_units(pl.col("margin")).alias("referral_units"))
    )


def referrals_known(customers: pl.LazyFrame) -> pl.LazyFrame:
    """One row: does the customers extract name any referrer (else referral value is unknown)?

    Rows of several buckets combine with `any` (see `with_referral_value`).
    """
    return customers.select(pl.col("referred_by").is_not_null().any().alias("referrals_known"))


def with_referral_value(
    frame: pl.LazyFrame, referral_units: pl.LazyFrame, known: pl.LazyFrame
) -> pl.LazyFrame:
    """`frame` (per customer, with `active_in_window`) plus referral_value (SPEC §3).

    referral_value = the margin in W of the customers this customer referred,
    from `referral_margin_units` and `referrals_known` rows of every bucket;
    null when no referrer is known at all; 0 for a customer active in W who
    referred nobody.
    """
    totals = referral_units.group_by("customer_id").agg(
        money_from_units(pl.col("referral_units").sum()).alias("referral_value")
    )
    any_known = known.select(pl.col("referrals_known").any())
    earned = pl.coalesce(
        pl.col("referral_value"), pl.when(pl.col("active_in_window")).then(pl.lit(0.0))
    )
    return (
        frame.join(totals, on="customer_id", how="left")
        .join(any_known, how="cross")
        .with_columns(pl.when(pl.col("referrals_known")).then(earned).alias("referral_value"))
        .drop("referrals_known")
    )


def profit_decomposition(
    transactions: pl.LazyFrame,
    customers: pl.LazyFrame,
    window: Period,
) -> pl.LazyFrame:
    """basic_profit, cross_sell_profit, referral_value, price_concessions in W (all of it at once).

    One row per customer active in W or with a referred customer's margin in W.
    Serve and acquisition costs come from `metrics.customer_costs`.
    """
    referral_units = referral_margin_units(transactions, customers, window)
    own = own_profit(transactions, window)
    return with_referral_value(
        own.join(
            referral_units.select("customer_id"), on="customer_id", how="full", coalesce=True
        ).with_columns(pl.col("active_in_window").fill_null(False)),
        referral_units,
        referrals_known(customers),
    ).drop("active_in_window")
