"""The output tables of SPEC §9, bucket by bucket: a table of contents of named steps.

Every per-customer figure depends on that customer's own rows only, so the
customers are split into buckets (by a hash of customer_id) and each bucket
is computed alone, in bounded memory. The few figures that need the whole
base reduce from small per-bucket partials:

    measured_customers, bucket_partials   bucket rows ≤ D -> customers' own figures, Partials
    group_facts       Partials, all     -> GroupFacts: churn, cohorts, segment M, referrals
    fit_purchase_models  Partials, all  -> the BG/NBD and Gamma-Gamma fits (transforms.models)
    customer_metrics_of  Measured + facts -> customer_metrics of the bucket
    customer_value       metrics + facts  -> customer_value of the bucket
    tier_scores / tier_cutoffs          -> exact percentile cut-offs over all buckets
    customer_tiers       metrics + value + cut-offs -> customer_tiers of the bucket
    equity_partials / customer_equity   -> customer_equity per group
    holdings_tables      bucket holdings + customers -> customer_holdings, holdings_mix (§10)

Each step is a pure function of its inputs, the settings and D; with one
bucket holding everyone they compute the whole base at once (`whole_base`).
Inputs are the warehouse tables as LazyFrames (any dates); `Inputs.as_of`
cuts them to rows dated ≤ D, so a backfill for D sees what a nightly run saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date

import polars as pl

from customer_equity.schemas.inputs import input_schema
from customer_equity.schemas.outputs import OUTPUT_SCHEMAS
from customer_equity.settings import Settings
from customer_equity.transforms import churn as churn_rules
from customer_equity.transforms import equity as equity_rules
from customer_equity.transforms import holdings as holdings_rules
from customer_equity.transforms import retention as retention_rules
from customer_equity.transforms import tiers as tier_rules
from customer_equity.transforms.cohorts import cohort_activity, cohort_triangle
from customer_equity.transforms.lifecycle import lifecycle_stage, with_decline_halves
from customer_equity.transforms.metrics import (
    annual_contribution,
    annualised,
    cost_rows,
    costed_transactions,
    customer_costs,
    is_purchase,
    repeat_purchase_summary,
    window_metrics,
    with_known_costs,
)
from customer_equity.transforms.models import (
    PurchaseModels,
    calibration_rows,
    fit_purchase_models,
    model_fit,
    p_alive_column,
    probabilistic_columns,
    repeat_purchase_rows,
    spend_rows,
)
from customer_equity.transforms.profit import (
    own_profit,
    referral_margin_units,
    referrals_known,
    with_referral_value,
)
from customer_equity.transforms.share import (
    contribution_identity,
    prospect_estimate,
    purchase_share,
    segment_margin_units,
)
from customer_equity.transforms.value import lifetime_values
from customer_equity.transforms.windows import trailing, up_to


def no_holdings() -> pl.LazyFrame:
    """An empty holdings table with its columns (SPEC §10 holdings are optional)."""
    columns = input_schema("holdings").columns
    return pl.LazyFrame(schema={name: column.dtype.type for name, column in columns.items()})


def known_by(customers: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """Customers known on D: created on or before D (or with no created_date)."""
    return customers.filter(pl.col("created_date").is_null() | (pl.col("created_date") <= as_of))


@dataclass(frozen=True)
class Inputs:
    """The warehouse tables (SPEC §2; holdings §10, optional), of one bucket or of all."""

    transactions: pl.LazyFrame
    customers: pl.LazyFrame
    wallets: pl.LazyFrame
    costs: pl.LazyFrame
    holdings: pl.LazyFrame = field(default_factory=no_holdings)

    def as_of(self, as_of: date) -> Inputs:
        """Point-in-time view: nothing dated after D."""
        return Inputs(
            transactions=up_to(self.transactions, "transaction_date", as_of),
            customers=known_by(self.customers, as_of),
            wallets=up_to(self.wallets, "period_start", as_of),
            costs=up_to(self.costs, "cost_date", as_of),
            holdings=up_to(self.holdings, "balance_date", as_of),
        )


@dataclass(frozen=True)
class Partials:
    """What one bucket contributes to the whole-base figures: small tables that add up.

    The partials of several buckets, concatenated field by field, are the
    partials of their union (`Partials.combined`); every reduction sums them.
    """

    churn_counts: pl.LazyFrame  # group_by, group_value, customers_at_start, customers_lost
    cohort_activity: pl.LazyFrame  # cohort, months_since_first, active_customers
    segment_margins: pl.LazyFrame  # segment, margin_units, revenue_units
    referral_margins: pl.LazyFrame  # customer_id (referrer), referral_units
    referrals_known: pl.LazyFrame  # referrals_known (one row)
    cost_rows: pl.LazyFrame  # cost_rows (one row)
    repeat_purchases: pl.LazyFrame  # repeat_purchases, recency_days, age_days, customers
    spend: pl.LazyFrame  # repeat_purchases, monetary_value, customers

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in fields(cls))

    @classmethod
    def combined(cls, parts: list[Partials]) -> Partials:
        return cls(
            **{
                name: pl.concat([getattr(part, name) for part in parts], how="vertical_relaxed")
                for name in cls.names()
            }
        )


@dataclass(frozen=True)
class Measured:
    """One bucket's customers with their own figures, and the bucket's partials."""

    customers: pl.LazyFrame
    partials: Partials


@dataclass(frozen=True)
class GroupFacts:
    """The whole-base figures a bucket's customers need, reduced from every bucket's partials."""

    churn: pl.LazyFrame  # the `churn` table
    segment_margins: pl.LazyFrame
    referral_margins: pl.LazyFrame
    referrals_known: pl.LazyFrame
    cost_rows: pl.LazyFrame


def columns_of(table: str) -> list[str]:
    """The output columns of `table`, in the order its schema declares them."""
    return list(OUTPUT_SCHEMAS[table].columns)


def empty_table(table: str) -> pl.LazyFrame:
    """`table` without rows, with its declared columns and types."""
    columns = OUTPUT_SCHEMAS[table].columns
    return pl.LazyFrame(schema={name: column.dtype.type for name, column in columns.items()})


def purchase_dates(transactions: pl.LazyFrame) -> pl.LazyFrame:
    return transactions.filter(is_purchase()).select("customer_id", "transaction_date")


def measured_customers(inputs: Inputs, as_of: date, settings: Settings) -> pl.LazyFrame:
    """Map step 1: per customer of the bucket, every figure of SPEC §3–§5 that needs only
    the customer's own rows."""
    metrics = settings.metrics
    data = inputs.as_of(as_of)
    transactions = costed_transactions(data.transactions, metrics)
    window = trailing(as_of, metrics.window_days)
    summary = repeat_purchase_summary(transactions, as_of, settings.model.monetary)
    everyone = pl.concat(
        [transactions.select("customer_id"), data.customers.select("customer_id")]
    ).unique()
    activity = churn_rules.last_activity(transactions)
    status = churn_rules.churn_status(activity, data.customers, as_of, metrics.churn_after_days)
    measured = (
        everyone.join(data.customers.select("customer_id", "segment"), on="customer_id", how="left")
        .join(summary, on="customer_id", how="left")
        .join(activity, on="customer_id", how="left")
        .join(window_metrics(transactions, window), on="customer_id", how="left")
        .with_columns(
            pl.col("orders").fill_null(0).cast(pl.Int64),
            *(pl.col(c).fill_null(0.0) for c in ("revenue", "cost", "gross_margin")),
            # Known only from returns is a customer (it bought before the data), not a prospect.
            pl.col("last_activity_date").is_null().alias("is_prospect"),
        )
        .pipe(annualised, as_of, metrics)
        .join(purchase_share(transactions, data.wallets, window), on="customer_id", how="left")
        .join(customer_costs(data.costs, window), on="customer_id", how="left")
        .join(own_profit(transactions, window), on="customer_id", how="left")
        .join(status, on="customer_id", how="left")
        .pipe(with_decline_halves, transactions, data.wallets, as_of, settings.lifecycle)
        .with_columns(
            pl.col("active_in_window").fill_null(False),
            pl.col("churned").fill_null(False),
            pl.col("closed").fill_null(False),
        )
        .pipe(annual_contribution)
        .pipe(contribution_identity)
    )
    if settings.lifecycle.decline_on == "aum":
        measured = measured.join(
            aum_halves(data.holdings, as_of, settings), on="customer_id", how="left"
        )
    return measured


def aum_halves(holdings: pl.LazyFrame, as_of: date, settings: Settings) -> pl.LazyFrame:
    """customer_id, aum_recent, aum_prior: AUM of D and of D − decline window (SPEC §10, §5)."""
    return holdings_rules.aum_comparison(
        holdings, as_of, settings.holdings, settings.lifecycle.decline_window_days
    ).select("customer_id", aum_recent="aum", aum_prior="aum_before")


def holdings_tables(
    holdings: pl.LazyFrame, customers: pl.LazyFrame, as_of: date, settings: Settings
) -> dict[str, pl.LazyFrame]:
    """Map step (with holdings): `customer_holdings` and `holdings_mix` (SPEC §10).

    From the bucket's holdings and customers; every figure is the customer's own.
    """
    dated = up_to(holdings, "balance_date", as_of)
    positions = holdings_rules.positions(dated, as_of, settings.holdings)
    return {
        "customer_holdings": holdings_rules.customer_holdings(
            dated, known_by(customers, as_of), as_of, settings.holdings
        )
        .select(columns_of("customer_holdings"))
        .sort("customer_id"),
        "holdings_mix": holdings_rules.holdings_mix(positions)
        .select(columns_of("holdings_mix"))
        .sort("customer_id", "dimension", "bucket"),
    }


def bucket_partials(
    inputs: Inputs, customers: pl.LazyFrame, as_of: date, settings: Settings
) -> Partials:
    """Map step 1b: the bucket's partials of the whole-base figures.

    `customers` is the bucket's `measured_customers` (materialised once by the
    caller, so the partials derived from it do not recompute it).
    """
    metrics = settings.metrics
    data = inputs.as_of(as_of)
    transactions = costed_transactions(data.transactions, metrics)
    window = trailing(as_of, metrics.window_days)
    dated = data.transactions.select("customer_id", "transaction_date", "amount")
    return Partials(
        churn_counts=churn_rules.churn_counts(
            churn_rules.churn_cohort(dated, data.customers, as_of, metrics.churn_after_days),
            data.customers,
        ),
        cohort_activity=cohort_activity(purchase_dates(data.transactions)),
        segment_margins=segment_margin_units(customers),
        referral_margins=referral_margin_units(transactions, data.customers, window),
        referrals_known=referrals_known(data.customers),
        cost_rows=cost_rows(data.costs),
        repeat_purchases=repeat_purchase_rows(customers),
        spend=spend_rows(customers),
    )


def measure(inputs: Inputs, as_of: date, settings: Settings) -> Measured:
    """Map step 1 in one: the measured customers and the bucket's partials."""
    customers = measured_customers(inputs, as_of, settings)
    return Measured(customers, bucket_partials(inputs, customers, as_of, settings))


def group_facts(partials: Partials) -> GroupFacts:
    """Reduce step: the whole-base figures from the partials of every bucket."""
    return GroupFacts(
        churn=churn_rules.churn_table(partials.churn_counts),
        segment_margins=partials.segment_margins,
        referral_margins=partials.referral_margins,
        referrals_known=partials.referrals_known,
        cost_rows=partials.cost_rows,
    )


def cohort_retention(partials: Partials, as_of: date) -> pl.LazyFrame:
    """`cohort_retention` (SPEC §4) from the cohort activity of every bucket."""
    return cohort_triangle(partials.cohort_activity, as_of)


def customer_metrics_of(
    measured: pl.LazyFrame,
    facts: GroupFacts,
    models: PurchaseModels | None,
    settings: Settings,
) -> pl.LazyFrame:
    """Map step 2a: `customer_metrics` (SPEC §3–§5) of one bucket's measured customers.

    Adds what needs the whole base (referral value, known costs, the prospect
    estimate's segment M, P(alive) of the fitted BG/NBD — null without
    `models`) and the lifecycle stage.
    """
    frame = (
        measured.pipe(with_referral_value, facts.referral_margins, facts.referrals_known)
        .pipe(with_known_costs, facts.cost_rows)
        .pipe(prospect_estimate, facts.segment_margins, settings.metrics)
        .pipe(lifecycle_stage, settings.lifecycle)
    )
    if models is None:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("p_alive"))
    else:
        frame = frame.join(p_alive_column(frame, models), on="customer_id", how="left")
    return frame.select(columns_of("customer_metrics")).sort("customer_id")


def customer_value(
    metrics: pl.LazyFrame, facts: GroupFacts, models: PurchaseModels, settings: Settings
) -> pl.LazyFrame:
    """Map step 2b: `customer_value`, every SPEC §6 method side by side with r, T, i, horizon."""
    valued = lifetime_values(
        metrics.drop("p_alive"), facts.churn, settings.value, settings.model.discount_rate
    )
    return (
        valued.join(probabilistic_columns(metrics, models, settings), on="customer_id", how="left")
        .with_columns(pl.lit(settings.model.horizon_months).cast(pl.Int64).alias("horizon_months"))
        .select(columns_of("customer_value"))
        .sort("customer_id")
    )


TIER_ATTRIBUTES = ("segment", "region", "risk_profile", "aum")


def tier_candidates(
    metrics: pl.LazyFrame,
    value: pl.LazyFrame,
    customers: pl.LazyFrame,
    holdings: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Per customer, every column a rule set may tier on: customer_metrics, customer_value
    and the customer attributes (segment, region, risk_profile, aum, aum_tier).

    With `holdings` (the bucket's customer_holdings) `aum` is the AUM of D where
    the customer has a position, else the customers extract's declared `aum`;
    `aum_tier` is mass / affluent / private_banking (null without a position).
    """
    present = customers.collect_schema()
    # An attribute the customers table lacks is unknown for everyone (typed null).
    typed = {name: column.dtype.type for name, column in input_schema("customers").columns.items()}
    attributes = customers.select(
        "customer_id",
        *(
            pl.col(a) if a in present else pl.lit(None, dtype=typed[a]).alias(a)
            for a in TIER_ATTRIBUTES
            if a != "segment"
        ),
    )
    if holdings is None:
        attributes = attributes.with_columns(pl.lit(None, dtype=pl.String).alias("aum_tier"))
    else:
        wealth = holdings.select("customer_id", pl.col("aum").alias("_held_aum"), "aum_tier")
        attributes = (
            attributes.join(wealth, on="customer_id", how="full", coalesce=True)
            .with_columns(pl.coalesce("_held_aum", "aum").alias("aum"))
            .drop("_held_aum")
        )
    return metrics.join(value.drop("segment", "lifecycle_stage", "p_alive"), on="customer_id").join(
        attributes, on="customer_id", how="left"
    )


def tier_scores(candidates: pl.LazyFrame, settings: Settings) -> dict[str, pl.LazyFrame]:
    """Map step 2c: the scores each percentile rule set ranks, for one bucket."""
    return {
        name: tier_rules.tier_scores(candidates, rule)
        for name, rule in settings.tiers.rule_sets.items()
        if rule.method == "percentile"
    }


def tier_cutoffs(scores: dict[str, pl.LazyFrame], settings: Settings) -> dict[str, pl.LazyFrame]:
    """Reduce step: exact percentile cut-offs per rule set from the scores of every bucket."""
    return {
        name: tier_rules.percentile_cutoffs(frame, settings.tiers.rule_sets[name])
        for name, frame in scores.items()
    }


def customer_tiers(
    candidates: pl.LazyFrame, cutoffs: dict[str, pl.LazyFrame], settings: Settings
) -> pl.LazyFrame:
    """Map step 3: `customer_tiers`, tier and action per customer and rule set (SPEC §8)."""
    return (
        tier_rules.customer_tiers(candidates, settings.tiers, cutoffs)
        .select(columns_of("customer_tiers"))
        .sort("rule_set", "customer_id")
    )


def equity_partials(
    value: pl.LazyFrame,
    metrics: pl.LazyFrame,
    tiers: pl.LazyFrame,
    settings: Settings,
    holdings: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Map step 3b: one bucket's share of `customer_equity` per group (sums that add up).

    With `holdings` (the bucket's customer_holdings) also per AUM tier (SPEC §10);
    customers without a position form the group with a null aum_tier.
    """
    main_tiers = tiers.filter(pl.col("rule_set") == settings.tiers.rule_set).select(
        "customer_id", "value_tier"
    )
    valued = (
        value.select("customer_id", "segment", "churn_rate")
        .join(
            metrics.select("customer_id", "churned", "is_prospect", "annual_contribution"),
            on="customer_id",
        )
        .join(main_tiers, on="customer_id", how="left")
    )
    if holdings is None:
        return equity_rules.equity_partials(valued, ("segment", "value_tier"))
    valued = valued.join(holdings.select("customer_id", "aum_tier"), on="customer_id", how="left")
    return equity_rules.equity_partials(valued, ("segment", "value_tier", "aum_tier"))


def customer_equity(
    partials: pl.LazyFrame, churn_table: pl.LazyFrame, settings: Settings
) -> pl.LazyFrame:
    """Reduce step: `customer_equity` per whole base, segment and value tier (SPEC §7).

    Base and segments take their r from `churn_table` (the `churn` table of D).
    AUM tiers (partials with holdings) are groups of members, like value tiers.
    """
    return equity_rules.customer_equity(
        partials,
        churn_table,
        settings.value,
        settings.model.discount_rate,
        member_groups=("value_tier", "aum_tier"),
    )


def retention_partials(
    metrics: pl.LazyFrame,
    tiers: pl.LazyFrame,
    as_of: date,
    settings: Settings,
    holdings: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Map step 3c: one bucket's customers acquired in the last year and their costs (SPEC §11).

    With `holdings` (the bucket's customer_holdings) also per AUM tier, the groups
    customer_equity has then.
    """
    aum_tiers = None if holdings is None else holdings.select("customer_id", "aum_tier")
    return retention_rules.acquisition_partials_of(
        metrics, tiers, as_of, settings.tiers.rule_set, aum_tiers
    )


def retention_economics(
    equity: pl.LazyFrame, partials: pl.LazyFrame, settings: Settings
) -> pl.LazyFrame:
    """Reduce step: `retention_economics` (SPEC §11) per customer_equity group."""
    return retention_rules.retention_economics(
        equity, retention_rules.acquisition_costs(partials), settings.value.max_lifetime_years
    )


def holdout_purchases(inputs: Inputs, calibration_end: date, as_of: date) -> pl.LazyFrame:
    """Purchase days after the calibration cut-off up to D, per customer (SPEC §6 validation)."""
    return (
        purchase_dates(inputs.as_of(as_of).transactions)
        .filter(pl.col("transaction_date") > calibration_end)
        .group_by("customer_id")
        .agg(pl.col("transaction_date").n_unique().alias("holdout_purchases"))
    )


def calibration_partial(
    inputs: Inputs, calibration_end: date, as_of: date, settings: Settings
) -> pl.LazyFrame:
    """Map step for `model_calibration`: one bucket's calibration summaries with holdout counts."""
    measured = measure(inputs, calibration_end, settings).customers
    return calibration_rows(measured, holdout_purchases(inputs, calibration_end, as_of))


def purchase_models(partials: Partials, settings: Settings) -> PurchaseModels:
    """Reduce step: BG/NBD and Gamma-Gamma fitted on every bucket's summary rows (SPEC §6)."""
    return fit_purchase_models(partials.repeat_purchases, partials.spend, settings)


@dataclass(frozen=True)
class WholeBase:
    """Every bucket step run on one bucket that holds everyone (tests, small data)."""

    measured: Measured
    facts: GroupFacts


def whole_base(inputs: Inputs, as_of: date, settings: Settings) -> WholeBase:
    measured = measure(inputs, as_of, settings)
    return WholeBase(measured, group_facts(measured.partials))


def whole_base_tables(
    inputs: Inputs, as_of: date, settings: Settings, models: PurchaseModels | None = None
) -> dict[str, pl.DataFrame]:
    """Every output table of D, computed in memory with one bucket that holds everyone.

    The same steps the flow runs bucket by bucket, for tests and small data.
    `models`: the fits to use (default: fitted here). The wealth tables only
    when there are holdings up to D.
    """
    base = whole_base(inputs, as_of, settings)
    partials = base.measured.partials
    models = models or purchase_models(partials, settings)
    data = inputs.as_of(as_of)
    wealth: dict[str, pl.DataFrame] = {}
    if data.holdings.select(pl.len()).collect().item():  # the wealth view only with holdings
        wealth = {
            name: frame.collect()
            for name, frame in holdings_tables(
                data.holdings, data.customers, as_of, settings
            ).items()
        }
    holdings = wealth["customer_holdings"].lazy() if wealth else None
    metrics = customer_metrics_of(base.measured.customers, base.facts, models, settings).collect()
    value = customer_value(metrics.lazy(), base.facts, models, settings).collect()
    candidates = tier_candidates(metrics.lazy(), value.lazy(), data.customers, holdings).collect()
    cutoffs = tier_cutoffs(tier_scores(candidates.lazy(), settings), settings)
    tiers = customer_tiers(candidates.lazy(), cutoffs, settings).collect()
    shares = equity_partials(value.lazy(), metrics.lazy(), tiers.lazy(), settings, holdings)
    equity = customer_equity(shares, base.facts.churn, settings).collect()
    acquired = retention_partials(metrics.lazy(), tiers.lazy(), as_of, settings, holdings)
    return {
        **wealth,
        "customer_metrics": metrics,
        "churn": base.facts.churn.collect(),
        "cohort_retention": cohort_retention(partials, as_of).collect(),
        "customer_value": value,
        "customer_tiers": tiers,
        "customer_equity": equity,
        "retention_economics": retention_economics(equity.lazy(), acquired, settings).collect(),
        "model_fit": model_fit(models),
    }


def customer_metrics(inputs: Inputs, as_of: date, settings: Settings) -> pl.LazyFrame:
    """`customer_metrics` of the whole base without the model (P(alive) null)."""
    base = whole_base(inputs, as_of, settings)
    return customer_metrics_of(base.measured.customers, base.facts, None, settings)
