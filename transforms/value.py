"""Customer lifetime value by the seed (annuity) and retention methods (SPEC §6, 客户终生价值).

The probabilistic method lives in `transforms.probabilistic`.
"""

from __future__ import annotations

import polars as pl

from customer_equity.settings import Value
from customer_equity.transforms.churn import BASE_GROUP


def pvifa(discount_rate: float | pl.Expr, years: pl.Expr) -> pl.Expr:
    """Present value interest factor of an annuity: (1 − (1 + i)^−T) / i, for real T."""
    i = pl.lit(discount_rate) if isinstance(discount_rate, float) else discount_rate
    return (1.0 - (1.0 + i).pow(-years)) / i


def projected_value(annual: pl.Expr, discount_rate: float, years: pl.Expr, horizon: int) -> pl.Expr:
    """Year by year: Σ_{t=1..H} c·w_t / (1 + i)^t, w_t = the share of year t within T.

    The explicit-horizon form of the seed method: a full year counts fully,
    the year in which the expected lifetime ends counts by the part of it that
    is lived, and nothing is counted beyond the horizon. With H ≥ T it equals
    c · PVIFA(i, T) for whole T. Null when c is (no contribution to project),
    like the annuity.
    """
    terms = [
        annual * (years - (t - 1)).clip(0.0, 1.0) / (1.0 + discount_rate) ** t
        for t in range(1, horizon + 1)
    ]
    return pl.when(annual.is_not_null()).then(pl.sum_horizontal(terms))


def retention_value(margin: pl.Expr, churn_rate: pl.Expr, discount_rate: float) -> pl.Expr:
    """Gupta & Lehmann: V = m · ρ / (1 + i − ρ), ρ = 1 − r (margin earned at year end)."""
    retention = 1.0 - churn_rate
    return margin * retention / (1.0 + discount_rate - retention)


# `lifetime_source` of customer_value and customer_equity: which r gave T — the group's
# own (named after the grouping, e.g. "segment"), the whole base's, or the cap.
BASE_RATE, CAPPED = "base", "cap"


def _capped(value: Value) -> list[pl.Expr]:
    """r floored at 1 / max_lifetime_years (so T never exceeds the cap), T = 1 / r, and the source.

    Needs `candidate_rate` (the r a group would use, null when none can be
    observed), `candidate_source`/`candidate_reason` and `customers_at_start`
    of the group the rate came from.
    """
    cap = value.max_lifetime_years
    floor_rate = 1.0 / cap
    rate = pl.col("candidate_rate").cast(pl.Float64)
    capped = rate.fill_null(0.0) < floor_rate
    cap_reason = (
        pl.when(rate.is_null())
        .then(pl.lit("nobody was active a year ago, so no churn rate can be observed"))
        .when(rate == 0)
        .then(pl.format("no churn observed ({} customers active a year ago)", "rate_customers"))
        .otherwise(pl.format("r = {} would give a lifetime above the cap", rate.round(6)))
    )
    return [
        pl.max_horizontal(rate.fill_null(0.0), pl.lit(floor_rate)).alias("churn_rate"),
        pl.when(capped)
        .then(pl.lit(CAPPED))
        .otherwise(pl.col("candidate_source"))
        .alias("lifetime_source"),
        pl.when(capped)
        .then(pl.format(f"{{}}: T = max_lifetime_years ({cap:g})", cap_reason))
        .otherwise(pl.col("candidate_reason"))
        .alias("lifetime_reason"),
    ]


LIFETIME_COLUMNS = ("churn_rate", "expected_lifetime_years", "lifetime_source", "lifetime_reason")


def base_lifetime(churn_table: pl.LazyFrame, value: Value) -> pl.LazyFrame:
    """The whole base's r and T (one row), floored at 1 / max_lifetime_years (SPEC §6).

    Source `base`, or `cap` when no r can be observed (nobody active a year
    ago), nobody churned, or 1 / r exceeds the cap.
    """
    return (
        churn_table.filter(pl.col("group_by") == BASE_GROUP)
        .select(
            pl.col("churn_rate").alias("candidate_rate"),
            pl.col("customers_at_start").alias("rate_customers"),
            pl.lit(BASE_RATE).alias("candidate_source"),
            pl.format(
                "the whole base's r ({} customers active a year ago)", "customers_at_start"
            ).alias("candidate_reason"),
        )
        .with_columns(_capped(value))
        .with_columns((1.0 / pl.col("churn_rate")).alias("expected_lifetime_years"))
        .select(LIFETIME_COLUMNS)
    )


def group_lifetimes(
    churn_table: pl.LazyFrame, value: Value, group_by: str | None = None
) -> pl.LazyFrame:
    """r and T per group value of `group_by` (default `value.group_by`), SPEC §6 fallbacks.

    A group with no observed churn or fewer than `min_group_size` customers at
    the start of the year takes the whole base's r; r is floored at
    1 / max_lifetime_years so that T never exceeds the cap. `lifetime_source`
    names the rate used — the group's own (`segment`), `base` or `cap` — and
    `lifetime_reason` says why in words.
    Columns: group_value, churn_rate, expected_lifetime_years, lifetime_source,
    lifetime_reason.
    """
    group_by = group_by or value.group_by
    base = base_lifetime(churn_table, value)
    if group_by == BASE_GROUP:
        return base.select(pl.lit("all").alias("group_value"), *LIFETIME_COLUMNS)
    at_start = pl.col("customers_at_start")
    usable = (at_start >= value.min_group_size) & (pl.col("churn_rate") > 0)
    why_not = (
        pl.when(at_start < value.min_group_size)
        .then(
            pl.format(
                f"{group_by} had {{}} customers active a year ago, fewer than min_group_size "
                f"({value.min_group_size})",
                at_start,
            )
        )
        .otherwise(
            pl.format(f"no churn observed in the {group_by} ({{}} customers a year ago)", at_start)
        )
    )
    own = (
        churn_table.filter(pl.col("group_by") == group_by)
        .filter(usable)
        .select(
            "group_value",
            pl.col("churn_rate").alias("candidate_rate"),
            at_start.alias("rate_customers"),
            pl.lit(group_by).alias("candidate_source"),
            pl.format(f"the {group_by}'s own r ({{}} customers active a year ago)", at_start).alias(
                "candidate_reason"
            ),
        )
        .with_columns(_capped(value))
        .with_columns((1.0 / pl.col("churn_rate")).alias("expected_lifetime_years"))
        .select("group_value", *LIFETIME_COLUMNS)
    )
    fallen_back = (
        churn_table.filter(pl.col("group_by") == group_by)
        .filter(~usable.fill_null(False))
        .select("group_value", why_not.alias("why"))
        .join(base, how="cross")
        .with_columns(pl.format("{}: {}", "why", "lifetime_reason").alias("lifetime_reason"))
        .select("group_value", *LIFETIME_COLUMNS)
    )
    return pl.concat([own, fallen_back])


def with_group_lifetimes(
    frame: pl.LazyFrame, key: str, churn_table: pl.LazyFrame, value: Value, group_by: str
) -> pl.LazyFrame:
    """`frame` with the r, T, source and reason of the `group_by` group named in column `key`.

    A group missing from the churn table (none of its customers was active a
    year ago) takes the whole base's r, or the cap. A null group value is a
    group of its own, as in the `churn` table.
    """
    per_group = group_lifetimes(churn_table, value, group_by)
    base = base_lifetime(churn_table, value).select(
        pl.col(c).alias(f"{c}_base") for c in LIFETIME_COLUMNS
    )
    unseen = pl.format(
        f"none of the {group_by} was active a year ago: {{}}", "lifetime_reason_base"
    )
    matched = pl.col("lifetime_source").is_not_null()
    return (
        frame.join(per_group, left_on=key, right_on="group_value", how="left", nulls_equal=True)
        .join(base, how="cross")
        .with_columns(
            *(pl.coalesce(c, f"{c}_base").alias(c) for c in LIFETIME_COLUMNS[:-1]),
            pl.when(matched).then("lifetime_reason").otherwise(unseen).alias("lifetime_reason"),
        )
        .drop(f"{c}_base" for c in LIFETIME_COLUMNS)
    )


def lifetime_values(
    metrics: pl.LazyFrame, churn_table: pl.LazyFrame, value: Value, discount_rate: float
) -> pl.LazyFrame:
    """clv_annuity, clv_projection and clv_retention per customer (SPEC §6).

    Contribution m = annual_contribution (Q − C); for a potential customer the
    wallet-based estimate less the acquisition cost (prospect screening:
    acquire when positive). A churned customer has no remaining lifetime: 0.
    """
    keyed = metrics.with_columns(
        (pl.col("segment") if value.group_by == "segment" else pl.lit("all"))
        .cast(pl.String)
        .alias("group")
    )
    joined = with_group_lifetimes(keyed, "group", churn_table, value, value.group_by)
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
    ).drop("group")
