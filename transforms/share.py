"""Purchase share K (share of wallet, 购进比例) and the wallet behind it (SPEC §3).

A wallet row declares the customer's total purchases from all suppliers over
[period_start, period_end]. For a period P (the window W, or a half-year of
the decline test) only the days where P and a wallet period overlap count:
the wallet is pro-rated by those days, and our revenue is summed over the same
days, so numerator and denominator always cover the same time.
"""

from __future__ import annotations

import polars as pl

from customer_equity.settings import Metrics
from customer_equity.transforms.money import money_from_units, money_sum, money_units
from customer_equity.transforms.windows import DAYS_PER_YEAR, Period


def wallet_overlap(
    transactions: pl.LazyFrame, wallets: pl.LazyFrame, period: Period
) -> pl.LazyFrame:
    """Per customer whose wallet overlaps `period`: pro-rated wallet, our revenue on those days.

    Columns: customer_id, wallet_total, wallet_revenue, wallet_days.
    """
    overlapping = (
        wallets.with_columns(
            period.overlap_days("period_start", "period_end").alias("overlap_days"),
            ((pl.col("period_end") - pl.col("period_start")).dt.total_days() + 1).alias(
                "period_days"
            ),
        )
        .filter(pl.col("overlap_days") > 0)
        .with_columns(
            pl.max_horizontal(pl.col("period_start"), pl.lit(period.start)).alias("overlap_start"),
            pl.min_horizontal(pl.col("period_end"), pl.lit(period.end)).alias("overlap_end"),
            (pl.col("total_purchases") * pl.col("overlap_days") / pl.col("period_days")).alias(
                "prorated_total"
            ),
        )
    )
    wallet = overlapping.group_by("customer_id").agg(
        money_sum(pl.col("prorated_total")).alias("wallet_total"),
        pl.col("overlap_days").sum().alias("wallet_days"),
    )
    revenue = (
        transactions.join(
            overlapping.select("customer_id", "overlap_start", "overlap_end"), on="customer_id"
        )
        .filter(pl.col("transaction_date").is_between("overlap_start", "overlap_end"))
        .group_by("customer_id")
        .agg(money_sum(pl.col("amount")).alias("wallet_revenue"))
    )
    return wallet.join(revenue, on="customer_id", how="left").with_columns(
        pl.col("wallet_revenue").fill_null(0.0)
    )


def purchase_share(
    transactions: pl.LazyFrame, wallets: pl.LazyFrame, window: Period
) -> pl.LazyFrame:
    """K = our revenue / the customer's total purchases over the same days of W.

    Values above 1 (we sold more than the declared total) are clipped to 1 and
    flagged in `purchase_share_clipped`; `purchase_share_raw` keeps the value.
    Customers without a wallet overlapping W are absent (K is null for them).
    """
    share = pl.when(pl.col("wallet_total") > 0).then(
        (pl.col("wallet_revenue") / pl.col("wallet_total")).clip(lower_bound=0.0)
    )
    return (
        wallet_overlap(transactions, wallets, window)
        .with_columns(share.alias("purchase_share_raw"))
        .with_columns(
            pl.col("purchase_share_raw").clip(upper_bound=1.0).alias("purchase_share"),
            (pl.col("purchase_share_raw") > 1.0).alias("purchase_share_clipped"),
            (pl.col("wallet_total") * DAYS_PER_YEAR / pl.col("wallet_days")).alias("annual_wallet"),
        )
        .select(
            "customer_id",
            "purchase_share",
            "purchase_share_raw",
            "purchase_share_clipped",
            "annual_wallet",
        )
    )


def contribution_identity(frame: pl.LazyFrame) -> pl.LazyFrame:
    """The source's Q = P·K·M·N for existing customers (SPEC §3), exact by construction.

    K (our share, raw: the identity needs the unclipped value), M and N are
    measured; P, the customer's total purchase per occasion across all
    suppliers, is what makes our part of it, P·K, our revenue per order in W:
    P = avg_order_value / K. P·K and N then describe the same period (W, or
    the customer's tenure), so P·K·M·N = revenue/orders · margin/revenue ·
    orders · annualisation = the annual gross margin, to rounding. (P from the
    annual wallet over N mixed the wallet's own days with N's period and was
    up to 92 % off for short tenures.) Null where P is undefined: no wallet,
    K = 0, no order or no revenue in W.
    """
    share = pl.col("purchase_share_raw")
    wallet_per_order = pl.when((share > 0) & (pl.col("purchase_frequency") > 0)).then(
        pl.col("avg_order_value") / share
    )
    return frame.with_columns(wallet_per_order.alias("wallet_per_order")).with_columns(
        (
            pl.col("wallet_per_order")
            * share
            * pl.col("margin_rate")
            * pl.col("purchase_frequency")
        ).alias("annual_margin_pkmn")
    )


def segment_margin_units(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Buyers' margin and revenue per segment as exact money units (partial sums, SPEC §3).

    Buyers are customers with revenue > 0 in W. Units of disjoint customer sets
    add up exactly, so per-bucket tables give the whole base's segment M.
    Columns: segment, margin_units, revenue_units.
    """
    buyers = frame.filter(pl.col("revenue") > 0)
    return buyers.group_by("segment").agg(
        money_units(pl.col("gross_margin")).alias("margin_units"),
        money_units(pl.col("revenue")).alias("revenue_units"),
    )


def _margin_rate(margin_units: pl.Expr, revenue_units: pl.Expr) -> pl.Expr:
    # Null where nobody bought: 0 / 0 would be NaN, which coalesce would not skip.
    revenue = money_from_units(revenue_units)
    return pl.when(revenue > 0).then(money_from_units(margin_units) / revenue)


def prospect_estimate(
    frame: pl.LazyFrame, margin_units: pl.LazyFrame, metrics: Metrics
) -> pl.LazyFrame:
    """Estimated Q for a potential customer: P·N from the wallet, K configured, M of the segment.

    M is the revenue-weighted margin rate of the buying customers of the same
    segment, the whole base's where the segment has none; `margin_units` are
    `segment_margin_units` rows of every bucket (summed here).
    """
    per_segment = margin_units.group_by("segment").agg(
        pl.col("margin_units").sum(), pl.col("revenue_units").sum()
    )
    segment_rate = per_segment.select(
        "segment",
        _margin_rate(pl.col("margin_units"), pl.col("revenue_units")).alias("segment_rate"),
    )
    base_rate = per_segment.select(
        _margin_rate(pl.col("margin_units").sum(), pl.col("revenue_units").sum()).alias("base_rate")
    )
    margin_rate = pl.coalesce("segment_rate", "base_rate")
    return (
        frame.join(segment_rate, on="segment", how="left", nulls_equal=True)
        .join(base_rate, how="cross")
        .with_columns(
            pl.when(pl.col("is_prospect"))
            .then(pl.col("annual_wallet") * metrics.target_share * margin_rate)
            .alias("estimated_annual_margin")
        )
        .drop("segment_rate", "base_rate")
    )
