"""Value tiers (客户分层) and the (tier, stage) → action matrix (SPEC §8)."""

from __future__ import annotations

import polars as pl

from customer_equity.settings import STAGES, TIERS, TierRule, Tiers


def value_tier(customers: pl.LazyFrame, name: str, rule: TierRule) -> pl.LazyFrame:
    """One rule set's tier per customer: customer_id, rule_set, value_tier, unprofitable, metric.

    Only active customers (not churned, not prospects) are ranked or
    thresholded; everyone else is general. Percentile counts are exact:
    core = round(core · n), core + important = round((core + important) · n),
    ties broken by customer_id. Whatever the rule, CLV ≤ 0 means general and
    `unprofitable`.
    """
    active = ~pl.col("churned") & ~pl.col("is_prospect")
    metric = pl.col(rule.metric)
    if rule.method == "percentile":
        # The position comes from with_row_index on the sorted frame, not from an
        # int_range expression, which the optimiser may evaluate in another order.
        ranked = (
            customers.with_columns(
                pl.when(active).then(metric.fill_null(float("-inf"))).alias("_score")
            )
            .sort(["_score", "customer_id"], descending=[True, False], nulls_last=True)
            .with_row_index("_position", offset=1)
        )
        count = pl.col("_score").is_not_null().sum()
        position = pl.col("_position")
        tier = (
            pl.when(pl.col("_score").is_null())
            .then(pl.lit("general"))
            .when(position <= (count * rule.core).round(0))
            .then(pl.lit("core"))
            .when(position <= (count * (rule.core + rule.important)).round(0))
            .then(pl.lit("important"))
            .otherwise(pl.lit("general"))
        )
        assigned = ranked.with_columns(tier.alias("value_tier")).drop("_score", "_position")
    elif rule.method == "threshold":
        tier = (
            pl.when(active & (metric >= rule.core))
            .then(pl.lit("core"))
            .when(active & (metric >= rule.important))
            .then(pl.lit("important"))
            .otherwise(pl.lit("general"))
        )
        assigned = customers.with_columns(tier.alias("value_tier"))
    else:
        mapped = metric.cast(pl.String).replace_strict(
            rule.values, default="general", return_dtype=pl.String
        )
        assigned = customers.with_columns(
            pl.when(active).then(mapped).otherwise(pl.lit("general")).alias("value_tier")
        )
    unprofitable = active & (pl.col("clv_annuity") <= 0)
    return assigned.with_columns(
        pl.lit(name).alias("rule_set"),
        unprofitable.fill_null(False).alias("unprofitable"),
        pl.lit(rule.metric).alias("tier_metric"),
        metric.cast(pl.String).alias("tier_metric_value"),
    ).with_columns(
        pl.when(pl.col("unprofitable"))
        .then(pl.lit("general"))
        .otherwise(pl.col("value_tier"))
        .alias("value_tier")
    )


def recommended_action(tiered: pl.LazyFrame, tiers: Tiers) -> pl.LazyFrame:
    """The configured action for each customer's (value_tier, lifecycle_stage) pair."""
    matrix = pl.LazyFrame(
        [
            {"value_tier": tier, "lifecycle_stage": stage, "action": tiers.action(tier, stage)}
            for tier in TIERS
            for stage in STAGES
        ]
    )
    return tiered.join(matrix, on=["value_tier", "lifecycle_stage"], how="left")


def customer_tiers(customers: pl.LazyFrame, tiers: Tiers) -> pl.LazyFrame:
    """Every named rule set's tier and action, one row per (customer, rule set)."""
    return pl.concat(
        [
            recommended_action(value_tier(customers, name, rule), tiers)
            for name, rule in sorted(tiers.rule_sets.items())
        ]
    )
