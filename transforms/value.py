"""Customer lifetime value by the seed (annuity) and retention methods (SPEC §6, 客户终生价值).

The probabilistic method lives in `transforms.probabilistic`.
"""

from __future__ import annotations

import polars as pl

from customer_equity.settings import Value
from transforms.churn import BASE_GROUP


def pvifa(discount_rate: float | pl.Expr, years: pl.Expr) -> pl.Expr:
    """Present value interest factor of an annuity: (1 − (1 + i)^−T) / i, for real T."""
    i = pl.lit(discount_rate) if isinstance(discount_rate, float) else discount_rate
    return (1.0 - (1.0 + i).pow(-years)) / i


def projected_value(annual: pl.Expr, discount_rate: float, years: pl.Expr, horizon: int) -> pl.Expr:
    """Year by year: Σ_{t=1..H} c·w_t / (1 + i)^t, w_t = the share of year t within T.

    The explicit-horizon form of the seed method: a full year counts fully,
    the year in which the expected lifetime ends counts by the part of it that
    is lived, and nothing is counted beyond the horizon. With H ≥ T it equals
    c · PVIFA(i, T) for whole T.
    """
    terms = [
        annual * (years - (t - 1)).clip(0.0, 1.0) / (1.0 + discount_rate) ** t
        for t in range(1, horizon + 1)
    ]
    return pl.sum_horizontal(terms)


def retention_value(margin: pl.Expr, churn_rate: pl.Expr, discount_rate: float) -> pl.Expr:
    """Gupta & Lehmann: V = m · ρ / (1 + i − ρ), ρ = 1 − r (margin earned at year end)."""
    retention = 1.0 - churn_rate
    return margin * retention / (1.0 + discount_rate - retention)


def group_lifetimes(churn_table: pl.LazyFrame, value: Value) -> pl.LazyFrame:
    """r and T used per group value of `value.group_by`, with the SPEC §6 fallbacks.

    A group with no observed churn or fewer than `min_group_size` customers at
    the start of the year takes the whole base's r; r is floored at
    1 / max_lifetime_years so that T never exceeds the cap (a base without any
    churn gets T = the cap). `lifetime_source` says which applied.
    Columns: group_value, churn_rate, expected_lifetime_years, lifetime_source.
    """
    floor_rate = 1.0 / value.max_lifetime_years
    base = churn_table.filter(pl.col("group_by") == BASE_GROUP).select(
        pl.col("churn_rate").alias("base_rate")
    )
    groups = churn_table.filter(pl.col("group_by") == value.group_by)
    usable = (pl.col("customers_at_start") >= value.min_group_size) & (pl.col("churn_rate") > 0)
    base_usable = pl.col("base_rate").fill_null(0.0) > 0
    chosen = pl.when(usable).then(pl.col("churn_rate")).otherwise(pl.col("base_rate"))
    source = (
        pl.when(usable)
        .then(pl.lit(value.group_by))
        .when(base_usable)
        .then(pl.lit("base (group too small or without churn)"))
        .otherwise(pl.lit("cap (no churn observed)"))
    )
    return (
        groups.join(base, how="cross")
        .with_columns(chosen.fill_null(0.0).alias("observed"), source.alias("lifetime_source"))
        .with_columns(
            pl.max_horizontal(pl.col("observed"), pl.lit(floor_rate)).alias("churn_rate"),
        )
        .with_columns(
            (1.0 / pl.col("churn_rate")).alias("expected_lifetime_years"),
            pl.when(pl.col("observed") < floor_rate)
            .then(pl.lit("cap (lifetime above max_lifetime_years)"))
            .otherwise(pl.col("lifetime_source"))
            .alias("lifetime_source"),
        )
        .select("group_value", "churn_rate", "expected_lifetime_years", "lifetime_source")
    )


def base_lifetime(churn_table: pl.LazyFrame, value: Value) -> pl.LazyFrame:
    """The whole base's r and T, floored and capped like every group (the fallback row)."""
    base = churn_table.filter(pl.col("group_by") == BASE_GROUP)
    whole = Value(
        group_by="base",
        min_group_size=1,
        max_lifetime_years=value.max_lifetime_years,
        projection_years=value.projection_years,
    )
    return group_lifetimes(base, whole).select(pl.exclude("group_value"))


def lifetime_values(
    metrics: pl.LazyFrame, churn_table: pl.LazyFrame, value: Value, discount_rate: float
) -> pl.LazyFrame:
    """clv_annuity, clv_projection and clv_retention per customer (SPEC §6).

    Contribution m = annual_contribution (Q − C); for a potential customer the
    wallet-based estimate less the acquisition cost (prospect screening:
    acquire when positive). A churned customer has no remaining lifetime: 0.
    """
    group_column = "segment" if value.group_by == "segment" else None
    per_group = group_lifetimes(churn_table, value)
    fallback = base_lifetime(churn_table, value)
    keyed = metrics.with_columns(
        (pl.col(group_column) if group_column else pl.lit("all")).cast(pl.String).alias("group")
    )
    joined = (
        keyed.join(per_group, left_on="group", right_on="group_value", how="left")
        .join(fallback, how="cross", suffix="_base")
        .with_columns(
            pl.coalesce("churn_rate", "churn_rate_base").alias("churn_rate"),
            pl.coalesce("expected_lifetime_years", "expected_lifetime_years_base").alias(
                "expected_lifetime_years"
            ),
            pl.coalesce(
                "lifetime_source",
                pl.lit("base (group unseen a year ago)"),
            ).alias("lifetime_source"),
        )
    )
    contribution = (
        pl.when(pl.col("is_prospect"))
        .then(pl.col("estimated_annual_margin"))
        .otherwise(pl.col("annual_contribution"))
    )
    acquisition = pl.when(pl.col("is_prospect")).then(pl.col("acquisition_cost").fill_null(0.0))
    lifetime = pl.col("expected_lifetime_years")
    alive = ~pl.col("churned")

    def remaining(expr: pl.Expr) -> pl.Expr:
        return pl.when(alive).then(expr - acquisition.fill_null(0.0)).otherwise(0.0)

    return joined.with_columns(
        contribution.alias("contribution_used"),
        pl.lit(discount_rate).alias("discount_rate"),
        pvifa(discount_rate, lifetime).alias("pvifa"),
        remaining(contribution * pvifa(discount_rate, lifetime)).alias("clv_annuity"),
        remaining(
            projected_value(contribution, discount_rate, lifetime, value.projection_years)
        ).alias("clv_projection"),
        remaining(retention_value(contribution, pl.col("churn_rate"), discount_rate)).alias(
            "clv_retention"
        ),
        pl.when(pl.col("is_prospect"))
        .then((contribution * pvifa(discount_rate, lifetime) - acquisition) > 0)
        .alias("worth_acquiring"),
    ).drop("group", "churn_rate_base", "expected_lifetime_years_base", "lifetime_source_base")
