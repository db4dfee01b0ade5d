"""Value tiers (客户分层) and the (tier, stage) → action matrix (SPEC §8)."""

from __future__ import annotations

import polars as pl

from customer_equity.settings import STAGES, TIERS, TierRule, Tiers


def _active() -> pl.Expr:
    return ~pl.col("churned") & ~pl.col("is_prospect")


def tier_scores(customers: pl.LazyFrame, rule: TierRule) -> pl.LazyFrame:
    """The active customers a percentile rule ranks, with their score (SPEC §8).

    score = the rule's metric, a missing value ranking last (−∞). Columns:
    customer_id, score. Scores of every bucket together give `percentile_cutoffs`.
    """
    return customers.filter(_active()).select(
        "customer_id", pl.col(rule.metric).cast(pl.Float64).fill_null(float("-inf")).alias("score")
    )


def percentile_cutoffs(scores: pl.LazyFrame, rule: TierRule) -> pl.LazyFrame:
    """The last core and the last important customer of a percentile rule, exactly.

    Active customers are ranked by score (highest first), ties by customer_id;
    core = the first round(core · n), core + important = the first
    round((core + important) · n). One row: n, core_rank, important_rank and
    the (score, customer_id) at each of those ranks (null when the rank is 0).
    Only the scores are sorted, never the customers' rows.
    """
    ranked = scores.sort(["score", "customer_id"], descending=[True, False]).with_row_index(
        "rank", offset=1
    )
    count = scores.select(pl.len().alias("ranked_customers"))
    ranks = count.with_columns(
        (pl.col("ranked_customers") * rule.core).round(0).cast(pl.Int64).alias("core_rank"),
        (pl.col("ranked_customers") * (rule.core + rule.important))
        .round(0)
        .cast(pl.Int64)
        .alias("important_rank"),
    )

    def at(rank: str, prefix: str) -> pl.LazyFrame:
        return ranks.join(
            ranked.select(
                pl.col("rank").cast(pl.Int64).alias(rank),
                pl.col("score").alias(f"{prefix}_score"),
                pl.col("customer_id").alias(f"{prefix}_customer_id"),
            ),
            on=rank,
            how="left",
        ).select(f"{prefix}_score", f"{prefix}_customer_id")

    return pl.concat(
        [ranks, at("core_rank", "core"), at("important_rank", "important")], how="horizontal"
    )


def _ranks_at_or_above(prefix: str) -> pl.Expr:
    """Ranked no lower than the cut-off customer (score desc, customer_id asc)."""
    score, customer = pl.col(f"{prefix}_score"), pl.col(f"{prefix}_customer_id")
    return (pl.col("_score") > score) | (
        (pl.col("_score") == score) & (pl.col("customer_id") <= customer)
    )


def value_tier(
    customers: pl.LazyFrame, name: str, rule: TierRule, cutoffs: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """One rule set's tier per customer: customer_id, rule_set, value_tier, unprofitable, metric.

    Only active customers (not churned, not prospects) are ranked or
    thresholded; everyone else is general. Percentile counts are exact:
    core = round(core · n), core + important = round((core + important) · n),
    ties broken by customer_id, over the whole base: `cutoffs` are
    `percentile_cutoffs` of every bucket's scores (computed from `customers`
    when omitted). Whatever the rule, CLV ≤ 0 means general and `unprofitable`.
    """
    active = _active()
    metric = pl.col(rule.metric)
    if rule.method == "percentile":
        if cutoffs is None:
            cutoffs = percentile_cutoffs(tier_scores(customers, rule), rule)
        scored = customers.with_columns(
            pl.when(active).then(metric.cast(pl.Float64).fill_null(float("-inf"))).alias("_score")
        ).join(cutoffs, how="cross")
        tier = (
            pl.when(pl.col("_score").is_null())
            .then(pl.lit("general"))
            .when(_ranks_at_or_above("core").fill_null(False))
            .then(pl.lit("core"))
            .when(_ranks_at_or_above("important").fill_null(False))
            .then(pl.lit("important"))
            .otherwise(pl.lit("general"))
        )
        assigned = scored.with_columns(tier.alias("value_tier")).select(
            *customers.collect_schema().names(), "value_tier"
        )
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


def customer_tiers(
    customers: pl.LazyFrame, tiers: Tiers, cutoffs: dict[str, pl.LazyFrame] | None = None
) -> pl.LazyFrame:
    """Every named rule set's tier and action, one row per (customer, rule set).

    `cutoffs` per percentile rule set come from the scores of the whole base
    (`percentile_cutoffs`); without them, `customers` is taken as the whole base.
    """
    cutoffs = cutoffs or {}
    return pl.concat(
        [
            recommended_action(value_tier(customers, name, rule, cutoffs.get(name)), tiers)
            for name, rule in sorted(tiers.rule_sets.items())
        ]
    )
