"""Profit decomposition per customer (SPEC §3, 客户为企业带来的总体利润).

A component is null when its input is absent — no category on the customer's
rows, no discount values, no referral data, no costs extract — never a
silent zero.
"""

from __future__ import annotations

import polars as pl

from transforms.metrics import is_purchase
from transforms.money import money_sum
from transforms.windows import Period


def core_category(transactions: pl.LazyFrame) -> pl.LazyFrame:
    """The category of the customer's first purchase: their core business (ties: larger amount)."""
    return (
        transactions.filter(is_purchase() & pl.col("category").is_not_null())
        .sort("transaction_date", "amount", "category", descending=[False, True, False])
        .group_by("customer_id")
        .agg(pl.col("category").first().alias("core_category"))
    )


def profit_decomposition(
    transactions: pl.LazyFrame,
    customers: pl.LazyFrame,
    window: Period,
) -> pl.LazyFrame:
    """basic_profit, cross_sell_profit, referral_value, price_concessions in W.

    basic = margin in the core category, cross-sell = margin in other
    categories (关联销售), referral = margin of the customers this customer
    referred, concessions = discounts granted (价格优惠). Serve and acquisition
    costs come from `metrics.customer_costs`.
    """
    in_window = transactions.filter(window.contains("transaction_date"))
    own = (
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
    referred_margin = (
        in_window.join(
            customers.select("customer_id", "referred_by").filter(
                pl.col("referred_by").is_not_null()
            ),
            on="customer_id",
        )
        .group_by(pl.col("referred_by").alias("customer_id"))
        .agg(money_sum(pl.col("margin")).alias("referral_value"))
    )
    referrers_known = customers.select(pl.col("referred_by").is_not_null().any().alias("known"))
    return (
        own.join(referred_margin, on="customer_id", how="full", coalesce=True)
        .join(referrers_known, how="cross")
        .with_columns(
            pl.when(pl.col("known"))
            .then(pl.col("referral_value").fill_null(0.0))
            .alias("referral_value")
        )
        .drop("known")
    )
