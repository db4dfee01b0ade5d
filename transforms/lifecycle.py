"""Lifecycle stage (客户生命周期阶段) as of D: six stages, first matching rule wins (SPEC §5)."""

from __future__ import annotations

from datetime import date

import polars as pl

from customer_equity.settings import STAGES, Lifecycle
from customer_equity.transforms.metrics import window_metrics
from customer_equity.transforms.share import wallet_overlap
from customer_equity.transforms.windows import DAYS_PER_YEAR, preceding, trailing

__all__ = ["STAGES", "lifecycle_stage", "with_decline_halves"]


def with_decline_halves(
    frame: pl.LazyFrame,
    transactions: pl.LazyFrame,
    wallets: pl.LazyFrame,
    as_of: date,
    lifecycle: Lifecycle,
) -> pl.LazyFrame:
    """`frame` (per customer) plus the two halves the decline rule compares (SPEC §5).

    revenue_recent / revenue_prior: our revenue in the last `decline_window_days`
    and in as many days before (0 without any); wallet_recent / wallet_prior:
    the customer's total business in each half (null without a wallet). A
    wallet that covers only part of a half is scaled to the whole half, so a
    partly covered half never reads as a fall.
    """
    recent = trailing(as_of, lifecycle.decline_window_days)
    halves = {"recent": recent, "prior": preceding(recent, lifecycle.decline_window_days)}
    for name, period in halves.items():
        frame = frame.join(
            window_metrics(transactions, period).select(
                "customer_id", pl.col("revenue").alias(f"revenue_{name}")
            ),
            on="customer_id",
            how="left",
        )
    for name, period in halves.items():
        frame = frame.join(
            wallet_overlap(transactions, wallets, period).select(
                "customer_id",
                (pl.col("wallet_total") / pl.col("wallet_days") * period.days).alias(
                    f"wallet_{name}"
                ),
            ),
            on="customer_id",
            how="left",
        )
    return frame.with_columns(pl.col("revenue_recent", "revenue_prior").fill_null(0.0))


def _change(recent: str, prior: str) -> pl.Expr:
    """Relative change recent vs prior; null when there is no prior amount to compare with."""
    return pl.when(pl.col(prior) > 0).then(pl.col(recent) / pl.col(prior) - 1.0)


def _pct(expr: pl.Expr) -> pl.Expr:
    return (expr * 100).round(0).cast(pl.Int64).cast(pl.String) + pl.lit("%")


def _decline_measure(
    lifecycle: Lifecycle, revenue_change: pl.Expr, wallet_change: pl.Expr
) -> tuple[pl.Expr, pl.Expr]:
    """The change the decline rule judges, and the reason text that names it.

    Revenue by default; with `decline_on = "aum"` (SPEC §10) a customer with a
    position on D (aum_recent not null) is judged on AUM of D against AUM a
    decline window earlier (aum_prior) instead.
    """
    business = (
        pl.when(wallet_change.is_null())
        .then(pl.lit("unknown (taken as stable)"))
        .otherwise(_pct(wallet_change))
    )
    days = pl.lit(lifecycle.decline_window_days)
    by_revenue = pl.format(
        "decline: revenue last {} days {} vs {} before ({}), customer's business {}",
        days,
        pl.col("revenue_recent").round(2),
        pl.col("revenue_prior").round(2),
        _pct(revenue_change),
        business,
    )
    if lifecycle.decline_on == "revenue":
        return revenue_change, by_revenue
    aum_change = _change("aum_recent", "aum_prior")
    by_aum = pl.format(
        "decline: AUM {} on D vs {} {} days before ({}), customer's business {}",
        pl.col("aum_recent").round(2),
        pl.col("aum_prior").round(2),
        days,
        _pct(aum_change),
        business,
    )
    has_holdings = pl.col("aum_recent").is_not_null()
    return (
        pl.when(has_holdings).then(aum_change).otherwise(revenue_change),
        pl.when(has_holdings).then(by_aum).otherwise(by_revenue),
    )


def lifecycle_stage(frame: pl.LazyFrame, lifecycle: Lifecycle) -> pl.LazyFrame:
    """Adds `lifecycle_stage` and `stage_reason` (the rule that matched, with its figures).

    Needs per customer: churned, is_prospect, tenure_days (null: known only
    from returns, see `transforms.churn.last_activity`), days_since_last_purchase
    (of the last activity), purchase_share and
    the two decline halves: revenue_recent / revenue_prior (ours) and
    wallet_recent / wallet_prior (the customer's total business, null
    without a wallet); with `decline_on = "aum"` also aum_recent / aum_prior.

    decline: our revenue fell by ≥ decline_drop while the customer's own
    business fell less (wallet known), or the wallet is unknown (business
    taken as stable). maturity: share ≥ maturity_share; without a wallet,
    tenure ≥ 1 year and revenue change within ±decline_drop.
    """
    drop = lifecycle.decline_drop
    revenue_change = _change("revenue_recent", "revenue_prior")
    wallet_change = _change("wallet_recent", "wallet_prior")
    declining, decline_reason = _decline_measure(lifecycle, revenue_change, wallet_change)
    fell = declining <= -drop
    business_held = wallet_change.is_null() | (wallet_change > declining)
    has_wallet = pl.col("purchase_share").is_not_null()
    stable = revenue_change.is_between(-drop, drop) | (
        (pl.col("revenue_prior") == 0) & (pl.col("revenue_recent") == 0)
    )

    # A customer known only from returns bought before the data starts: no first purchase
    # (so no tenure) on record, its last return is its last activity.
    returns_only = pl.col("tenure_days").is_null() & ~pl.col("is_prospect")
    last_activity = pl.when(returns_only).then(pl.lit("return")).otherwise(pl.lit("purchase"))
    rules: list[tuple[str, pl.Expr, pl.Expr]] = [
        (
            "termination",
            pl.col("churned"),
            pl.when(pl.col("closed"))
            .then(pl.lit("termination: relationship closed"))
            .otherwise(
                pl.format(
                    "termination: last {} {} days ago",
                    last_activity,
                    pl.col("days_since_last_purchase"),
                )
            ),
        ),
        ("potential", pl.col("is_prospect"), pl.lit("potential: known, no purchase yet")),
        (
            "development",
            pl.col("tenure_days") <= lifecycle.development_days,
            pl.format("development: first purchase {} days ago", pl.col("tenure_days") - 1),
        ),
        ("decline", fell & business_held, decline_reason),
        (
            "maturity",
            pl.when(has_wallet)
            .then(pl.col("purchase_share") >= lifecycle.maturity_share)
            .otherwise((pl.col("tenure_days") > DAYS_PER_YEAR) & stable),
            pl.when(has_wallet)
            .then(pl.format("maturity: purchase share {}", _pct(pl.col("purchase_share"))))
            .otherwise(
                pl.format(
                    "maturity: no wallet, tenure {} days, revenue change {}",
                    pl.col("tenure_days"),
                    pl.coalesce(_pct(revenue_change), pl.lit("0%")),
                )
            ),
        ),
    ]
    stage = pl.when(rules[0][1].fill_null(False)).then(pl.lit(rules[0][0]))
    reason = pl.when(rules[0][1].fill_null(False)).then(rules[0][2])
    for name, condition, why in rules[1:]:
        stage = stage.when(condition.fill_null(False)).then(pl.lit(name))
        reason = reason.when(condition.fill_null(False)).then(why)
    growth_reason = pl.format(
        "growth: active, purchase share {}, revenue change {}",
        pl.coalesce(_pct(pl.col("purchase_share")), pl.lit("unknown")),
        pl.coalesce(_pct(revenue_change), pl.lit("n/a")),
    )
    returns_only_reason = pl.format(
        "growth: known only from returns (bought before the data starts), last return {} days ago",
        pl.col("days_since_last_purchase"),
    )
    return frame.with_columns(
        stage.otherwise(pl.lit("growth")).alias("lifecycle_stage"),
        reason.otherwise(
            pl.when(returns_only).then(returns_only_reason).otherwise(growth_reason)
        ).alias("stage_reason"),
    )
