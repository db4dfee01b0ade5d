"""The wealth view (客户资产分层): what each customer holds with us as of D (SPEC §10).

Every figure here depends on one customer's own holdings rows (and their
customers row) only, so the functions can run on any partition of the
customers. Inputs are the holdings rows dated ≤ D (more are cut off here too)
and the customers table; config is `Settings.holdings`.

Reading of SPEC §10 where it leaves room:
- Liability classes (loans, overdrafts: `holdings.liability_classes`) are the
  only place a balance may be negative; they are reported as `liabilities`
  and are not part of AUM or of any share, so every share stays in [0, 1]
  and the concentration indices keep their meaning.
- A product whose latest balance is 0 is a closed position: it adds nothing
  to AUM and is not counted among the products held.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from customer_equity.settings import AumTiers, Holdings
from customer_equity.transforms.money import money_sum, rate_sum
from customer_equity.transforms.windows import days_between, up_to

PRODUCT = ["customer_id", "product_id"]
MIX_DIMENSIONS = ("asset_class", "liquidity", "goal")
NO_GOAL = "unspecified"
# SPEC §10 return expectation (收益预期) from the balance-weighted risk level.
STABLE_UP_TO, MEDIUM_UP_TO = 2.0, 3.5
COMPARISON_DAYS = 180


def latest_balances(holdings: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """Each product's latest balance on or before D, with `days_old` = D − its balance_date."""
    dated = up_to(holdings, "balance_date", as_of)
    return dated.filter(
        pl.col("balance_date") == pl.col("balance_date").max().over(PRODUCT)
    ).with_columns(days_between(pl.col("balance_date"), as_of).alias("days_old"))


def positions(holdings: pl.LazyFrame, as_of: date, settings: Holdings) -> pl.LazyFrame:
    """The positions of D (SPEC §10): latest balance per product, ignored when stale.

    A latest balance older than `stale_days` before D is no position (exactly
    `stale_days` old still is). Liquidity and risk level come from the row,
    else from the asset class's configured value; `is_liability` marks the
    liability classes, which carry neither.
    """
    return positions_of(latest_balances(holdings, as_of), settings)


def positions_of(latest: pl.LazyFrame, settings: Holdings) -> pl.LazyFrame:
    """`positions` from the latest balances of D (`latest_balances`), computed once."""
    liability = pl.col("asset_class").is_in(list(settings.liability_classes))
    class_liquidity = pl.col("asset_class").replace_strict(
        settings.class_liquidity, default=None, return_dtype=pl.String
    )
    class_risk = pl.col("asset_class").replace_strict(
        settings.class_risk_level, default=None, return_dtype=pl.Float64
    )
    return latest.filter(pl.col("days_old") <= settings.stale_days).select(
        *PRODUCT,
        "balance_date",
        "asset_class",
        "balance",
        pl.when(~liability).then(pl.coalesce("liquidity", class_liquidity)).alias("liquidity"),
        pl.when(~liability)
        .then(pl.coalesce(pl.col("risk_level").cast(pl.Float64), class_risk))
        .alias("risk_level"),
        pl.col("goal").fill_null(NO_GOAL),
        liability.alias("is_liability"),
    )


def _assets(positions_of_d: pl.LazyFrame) -> pl.LazyFrame:
    return positions_of_d.filter(~pl.col("is_liability"))


def _share_of_aum(amount: pl.Expr) -> pl.Expr:
    """amount / aum; null when the customer holds nothing (aum 0)."""
    return pl.when(pl.col("aum") > 0).then(amount / pl.col("aum"))


def assets_under_management(positions_of_d: pl.LazyFrame) -> pl.LazyFrame:
    """Per customer with a position: aum, liabilities, products and asset classes held.

    aum = Σ balance of the asset positions; liabilities = Σ balance of the
    liability positions (0 when none); products and asset_classes count the
    positions with a balance above 0; last_balance_date is the newest balance.
    """
    held = pl.col("balance") > 0
    asset = ~pl.col("is_liability")
    return positions_of_d.group_by("customer_id").agg(
        money_sum(pl.when(asset).then(pl.col("balance")).otherwise(0.0)).alias("aum"),
        money_sum(pl.when(~asset).then(pl.col("balance")).otherwise(0.0)).alias("liabilities"),
        (asset & held).sum().cast(pl.Int64).alias("products"),
        pl.col("asset_class").filter(asset & held).n_unique().cast(pl.Int64).alias("asset_classes"),
        pl.col("balance_date").max().alias("last_balance_date"),
    )


def aum_as_of(holdings: pl.LazyFrame, as_of: date, settings: Holdings) -> pl.LazyFrame:
    """customer_id, aum: the AUM of D for every customer with a position on D."""
    return assets_under_management(positions(holdings, as_of, settings)).select(
        "customer_id", "aum"
    )


def aum_comparison(
    holdings: pl.LazyFrame, as_of: date, settings: Holdings, days: int = COMPARISON_DAYS
) -> pl.LazyFrame:
    """customer_id, aum, aum_before, aum_change: AUM of D, of D − `days` by the same rule.

    One row per customer with a position on D. aum_before is null when the
    customer had no position on D − days; aum_change = aum / aum_before − 1,
    null when aum_before is null or 0.
    """
    now = aum_as_of(holdings, as_of, settings)
    before = aum_as_of(holdings, as_of - timedelta(days=days), settings).rename(
        {"aum": "aum_before"}
    )
    return now.join(before, on="customer_id", how="left").with_columns(
        _change(pl.col("aum"), pl.col("aum_before")).alias("aum_change")
    )


def _change(now: pl.Expr, before: pl.Expr) -> pl.Expr:
    """now / before − 1; null when there is no earlier amount (null or 0)."""
    return pl.when(before > 0).then(now / before - 1.0)


def holdings_mix(positions_of_d: pl.LazyFrame) -> pl.LazyFrame:
    """customer_id, dimension, bucket, balance, share: AUM by asset class, liquidity and goal.

    Only positions with a balance above 0; within one customer and dimension
    the shares add up to 1. A position without a goal is in bucket `unspecified`.
    share = bucket balance / AUM, both exact sums, so it never depends on row order.
    """
    held = _assets(positions_of_d).filter(pl.col("balance") > 0)
    aum = held.group_by("customer_id").agg(money_sum(pl.col("balance")).alias("aum"))
    by_dimension = [
        held.group_by("customer_id", pl.col(dimension).alias("bucket"))
        .agg(money_sum(pl.col("balance")).alias("balance"))
        .with_columns(pl.lit(dimension).alias("dimension"))
        for dimension in MIX_DIMENSIONS
    ]
    return (
        pl.concat(by_dimension, how="diagonal")
        .join(aum, on="customer_id")
        .select(
            "customer_id",
            "dimension",
            "bucket",
            "balance",
            _share_of_aum(pl.col("balance")).alias("share"),
        )
    )


def concentration(positions_of_d: pl.LazyFrame) -> pl.LazyFrame:
    """customer_id, asset_class_herfindahl, product_herfindahl, largest_product_share.

    Herfindahl index = Σ share² over asset classes (resp. products), shares of
    AUM: 1 when everything is in one, 1/n for n equal parts. Null when AUM is 0.
    """
    assets = _assets(positions_of_d)
    aum = assets.group_by("customer_id").agg(money_sum(pl.col("balance")).alias("aum"))
    held = pl.col("aum").first() > 0
    share = _share_of_aum(pl.col("balance"))
    by_class = (
        assets.group_by("customer_id", "asset_class")
        .agg(money_sum(pl.col("balance")).alias("balance"))
        .join(aum, on="customer_id")
        .group_by("customer_id")
        .agg(pl.when(held).then(rate_sum(share**2)).alias("asset_class_herfindahl"))
    )
    by_product = (
        assets.join(aum, on="customer_id")
        .group_by("customer_id")
        .agg(
            pl.when(held).then(rate_sum(share**2)).alias("product_herfindahl"),
            share.max().alias("largest_product_share"),
        )
    )
    return by_class.join(by_product, on="customer_id")


def return_expectation(risk_level: pl.Expr) -> pl.Expr:
    """stable (≤ 2), medium (≤ 3.5) or high (> 3.5) from a balance-weighted risk level."""
    return (
        pl.when(risk_level <= STABLE_UP_TO)
        .then(pl.lit("stable"))
        .when(risk_level <= MEDIUM_UP_TO)
        .then(pl.lit("medium"))
        .when(risk_level.is_not_null())
        .then(pl.lit("high"))
    )


def risk_and_return(positions_of_d: pl.LazyFrame) -> pl.LazyFrame:
    """customer_id, holdings_risk_level (balance-weighted mean R1–R5), return_expectation."""
    return (
        _assets(positions_of_d)
        .group_by("customer_id")
        .agg(
            money_sum(pl.col("balance") * pl.col("risk_level")).alias("weighted"),
            money_sum(pl.col("balance")).alias("aum"),
        )
        .select(
            "customer_id",
            # The mean lies within the levels; the clip only removes the sums' rounding.
            _share_of_aum(pl.col("weighted")).clip(1.0, 5.0).alias("holdings_risk_level"),
        )
        .with_columns(return_expectation(pl.col("holdings_risk_level")).alias("return_expectation"))
    )


def declared_profile(customers: pl.LazyFrame) -> pl.LazyFrame:
    """customer_id, risk_profile as declared, and its lower-case form for the lookups."""
    return customers.select(
        "customer_id",
        "risk_profile",
        pl.col("risk_profile").str.strip_chars().str.to_lowercase().alias("_profile"),
    )


def suitability(
    positions_of_d: pl.LazyFrame, customers: pl.LazyFrame, settings: Holdings
) -> pl.LazyFrame:
    """customer_id, tolerated_risk_level, unsuitable_share, suitability_flag.

    The declared risk profile maps to the highest product risk level it
    tolerates; unsuitable_share = share of AUM in products above it;
    suitability_flag = unsuitable_share > 0. An unknown or missing profile
    gives nulls, not a flag.
    """
    tolerated = (
        declared_profile(customers)
        .select(
            "customer_id",
            pl.col("_profile")
            .replace_strict(settings.tolerated_risk_level, default=None, return_dtype=pl.Int64)
            .alias("tolerated_risk_level"),
        )
        .filter(pl.col("tolerated_risk_level").is_not_null())
    )
    above = pl.col("risk_level") > pl.col("tolerated_risk_level")
    return (
        _assets(positions_of_d)
        .join(tolerated, on="customer_id", how="left")
        .group_by("customer_id")
        .agg(
            pl.col("tolerated_risk_level").first(),
            money_sum(pl.when(above).then(pl.col("balance")).otherwise(0.0)).alias("unsuitable"),
            money_sum(pl.col("balance")).alias("aum"),
        )
        .select(
            "customer_id",
            "tolerated_risk_level",
            pl.when(pl.col("tolerated_risk_level").is_not_null())
            .then(_share_of_aum(pl.col("unsuitable")))
            .alias("unsuitable_share"),
        )
        .with_columns((pl.col("unsuitable_share") > 0).alias("suitability_flag"))
    )


def liquidity(
    positions_of_d: pl.LazyFrame, customers: pl.LazyFrame, settings: Holdings
) -> pl.LazyFrame:
    """customer_id, high_liquidity_share, min_liquid_share, liquidity_gap.

    high_liquidity_share = share of AUM in high-liquidity products; the
    minimum is the profile's (`min_liquid_share`), else the default (also for
    an unknown profile); liquidity_gap when the share is below it.
    """
    minimum = declared_profile(customers).select(
        "customer_id",
        pl.col("_profile")
        .replace_strict(settings.min_liquid_share, default=None, return_dtype=pl.Float64)
        .alias("min_liquid_share"),
    )
    return (
        _assets(positions_of_d)
        .group_by("customer_id")
        .agg(
            money_sum(
                pl.when(pl.col("liquidity") == "high").then(pl.col("balance")).otherwise(0.0)
            ).alias("high"),
            money_sum(pl.col("balance")).alias("aum"),
        )
        .join(minimum, on="customer_id", how="left")
        .select(
            "customer_id",
            _share_of_aum(pl.col("high")).alias("high_liquidity_share"),
            pl.col("min_liquid_share").fill_null(settings.default_min_liquid_share),
        )
        .with_columns(
            (pl.col("high_liquidity_share") < pl.col("min_liquid_share")).alias("liquidity_gap")
        )
    )


def aum_tier(aum: pl.Expr, tiers: AumTiers) -> pl.Expr:
    """mass (< affluent), affluent (< private_banking) or private_banking, from AUM."""
    return (
        pl.when(aum >= tiers.private_banking)
        .then(pl.lit("private_banking"))
        .when(aum >= tiers.affluent)
        .then(pl.lit("affluent"))
        .when(aum.is_not_null())
        .then(pl.lit("mass"))
    )


def stale_products(latest: pl.LazyFrame, settings: Holdings) -> pl.LazyFrame:
    """customer_id, stale_products: products whose latest non-zero balance is too old to count.

    `latest` is `latest_balances` of D.
    """
    return (
        latest.filter((pl.col("days_old") > settings.stale_days) & (pl.col("balance") != 0))
        .group_by("customer_id")
        .agg(pl.len().cast(pl.Int64).alias("stale_products"))
    )


def customer_holdings(
    holdings: pl.LazyFrame, customers: pl.LazyFrame, as_of: date, settings: Holdings
) -> pl.LazyFrame:
    """Every §10 figure per customer with a position on D, one row each (see the functions).

    aum_180d_ago is the AUM of D − 180 by the same rule (null: no position
    then); aum_change = aum / aum_180d_ago − 1 (null without an earlier AUM).
    """
    # Every family reads the same positions; without the cache each branch's own
    # projection made Polars recompute the per-product window (6× the work).
    latest = latest_balances(holdings, as_of).cache()
    held = positions_of(latest, settings).cache()
    earlier = aum_as_of(holdings, as_of - timedelta(days=COMPARISON_DAYS), settings)
    families = (
        earlier.rename({"aum": "aum_180d_ago"}),
        concentration(held),
        risk_and_return(held),
        suitability(held, customers, settings),
        liquidity(held, customers, settings),
        stale_products(latest, settings),
    )
    frame = assets_under_management(held).join(
        customers.select("customer_id", "segment", "risk_profile"), on="customer_id", how="left"
    )
    for family in families:
        frame = frame.join(family, on="customer_id", how="left")
    return frame.with_columns(
        aum_tier(pl.col("aum"), settings.aum_tiers).alias("aum_tier"),
        _change(pl.col("aum"), pl.col("aum_180d_ago")).alias("aum_change"),
        pl.col("stale_products").fill_null(0),
    )
