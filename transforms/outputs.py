"""The output tables of SPEC §9, each assembled from the concept modules.

Inputs are the warehouse tables as LazyFrames (any dates); every function cuts
them to rows dated ≤ D itself, so a backfill for D sees exactly what a nightly
run on D saw.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

import polars as pl

from customer_equity.settings import Settings
from schemas.outputs import OUTPUT_SCHEMAS
from transforms import churn as churn_rules
from transforms import equity as equity_rules
from transforms import tiers as tier_rules
from transforms.cohorts import cohort_retention as retention_triangle
from transforms.lifecycle import lifecycle_stage
from transforms.metrics import (
    annual_contribution,
    annualised,
    costed_transactions,
    customer_costs,
    is_purchase,
    repeat_purchase_summary,
    window_metrics,
)
from transforms.probabilistic import (
    BgNbdFit,
    GammaGammaFit,
    ModelFitError,
    PredictionError,
    calibration_holdout_table,
    fit_bgnbd,
    fit_gamma_gamma,
    p_alive,
    probabilistic_value,
)
from transforms.profit import profit_decomposition
from transforms.share import (
    contribution_identity,
    prospect_estimate,
    purchase_share,
    wallet_overlap,
)
from transforms.value import lifetime_values
from transforms.windows import preceding, trailing, up_to


@dataclass(frozen=True)
class Inputs:
    """The four warehouse tables (canonical columns of SPEC §2)."""

    transactions: pl.LazyFrame
    customers: pl.LazyFrame
    wallets: pl.LazyFrame
    costs: pl.LazyFrame

    def as_of(self, as_of: date) -> Inputs:
        """Point-in-time view: nothing dated after D."""
        return Inputs(
            transactions=up_to(self.transactions, "transaction_date", as_of),
            customers=self.customers.filter(
                pl.col("created_date").is_null() | (pl.col("created_date") <= as_of)
            ),
            wallets=up_to(self.wallets, "period_start", as_of),
            costs=up_to(self.costs, "cost_date", as_of),
        )


def columns_of(table: str) -> list[str]:
    """The output columns of `table`, in the order its schema declares them."""
    return list(OUTPUT_SCHEMAS[table].columns)


def purchase_dates(transactions: pl.LazyFrame) -> pl.LazyFrame:
    return transactions.filter(is_purchase()).select("customer_id", "transaction_date")


def customer_metrics(inputs: Inputs, as_of: date, settings: Settings) -> pl.LazyFrame:
    """`customer_metrics` (SPEC §3–§5): one row per customer known or buying by D."""
    metrics, lifecycle = settings.metrics, settings.lifecycle
    data = inputs.as_of(as_of)
    transactions = costed_transactions(data.transactions, metrics)
    window = trailing(as_of, metrics.window_days)
    recent = trailing(as_of, lifecycle.decline_window_days)
    prior = preceding(recent, lifecycle.decline_window_days)

    summary = repeat_purchase_summary(transactions, as_of, settings.model.monetary)
    everyone = pl.concat(
        [
            transactions.select("customer_id"),
            data.customers.select("customer_id"),
        ]
    ).unique()
    halves = [
        window_metrics(transactions, period).select(
            "customer_id", pl.col("revenue").alias(f"revenue_{name}")
        )
        for name, period in (("recent", recent), ("prior", prior))
    ]
    # The customer's business per half, scaled to the whole half: a wallet that
    # covers only part of a half must not read as a fall in their business.
    wallets = [
        wallet_overlap(transactions, data.wallets, period).select(
            "customer_id",
            (pl.col("wallet_total") / pl.col("wallet_days") * period.days).alias(f"wallet_{name}"),
        )
        for name, period in (("recent", recent), ("prior", prior))
    ]
    activity = churn_rules.last_activity(transactions)
    status = churn_rules.churn_status(activity, data.customers, as_of, metrics.churn_after_days)
    frame = (
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
        .join(
            profit_decomposition(transactions, data.customers, window), on="customer_id", how="left"
        )
        .join(status, on="customer_id", how="left")
    )
    for half in (*halves, *wallets):
        frame = frame.join(half, on="customer_id", how="left")
    costs_known = data.costs.select(pl.len().alias("cost_rows"))
    frame = (
        frame.join(costs_known, how="cross")
        .with_columns(
            pl.col("revenue_recent").fill_null(0.0),
            pl.col("revenue_prior").fill_null(0.0),
            pl.col("churned").fill_null(False),
            pl.col("closed").fill_null(False),
            *(
                pl.when(pl.col("cost_rows") > 0).then(pl.col(c).fill_null(0.0)).alias(c)
                for c in ("serve_cost", "acquisition_cost")
            ),
            pl.lit(None, dtype=pl.Float64).alias("p_alive"),
        )
        .drop("cost_rows")
        .pipe(annual_contribution)
        .pipe(contribution_identity)
        .pipe(prospect_estimate, metrics)
        .pipe(lifecycle_stage, lifecycle)
    )
    return frame.select(columns_of("customer_metrics")).sort("customer_id")


def churn(inputs: Inputs, as_of: date, settings: Settings) -> pl.LazyFrame:
    """`churn`: r and T = 1/r for the whole base and per segment, with the counts behind r."""
    data = inputs.as_of(as_of)
    return churn_rules.churn_rates(
        data.transactions.select("customer_id", "transaction_date", "amount"),
        data.customers,
        as_of,
        settings.metrics.churn_after_days,
    )


def cohort_retention(inputs: Inputs, as_of: date) -> pl.LazyFrame:
    """`cohort_retention` (SPEC §4)."""
    data = inputs.as_of(as_of)
    return retention_triangle(purchase_dates(data.transactions), as_of)


@dataclass(frozen=True)
class PurchaseModels:
    """The fitted BG/NBD and Gamma-Gamma models of one as-of date, or why they are absent."""

    bgnbd: BgNbdFit | None
    gamma_gamma: GammaGammaFit | None
    time_unit: str
    bgnbd_error: str | None = None
    gamma_gamma_error: str | None = None
    # Why a fitted model is not used for predictions (None: it is used).
    bgnbd_unused: str | None = None
    gamma_gamma_unused: str | None = None

    def to_record(self) -> dict[str, object]:
        """Plain values, small enough to pass between flow tasks."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, object]) -> PurchaseModels:
        bgnbd, gamma_gamma = record["bgnbd"], record["gamma_gamma"]
        return cls(
            bgnbd=BgNbdFit(**bgnbd) if isinstance(bgnbd, dict) else None,
            gamma_gamma=GammaGammaFit(**gamma_gamma) if isinstance(gamma_gamma, dict) else None,
            time_unit=str(record["time_unit"]),
            bgnbd_error=record["bgnbd_error"],  # type: ignore[arg-type]
            gamma_gamma_error=record["gamma_gamma_error"],  # type: ignore[arg-type]
            bgnbd_unused=record.get("bgnbd_unused"),  # type: ignore[arg-type]
            gamma_gamma_unused=record.get("gamma_gamma_unused"),  # type: ignore[arg-type]
        )

    @property
    def usable_bgnbd(self) -> BgNbdFit | None:
        return self.bgnbd if self.bgnbd_unused is None else None

    @property
    def usable_gamma_gamma(self) -> GammaGammaFit | None:
        return self.gamma_gamma if self.gamma_gamma_unused is None else None


DAYS_PER_UNIT = {"days": 1.0, "weeks": 7.0}


def repeat_purchase_summary_in_units(metrics: pl.LazyFrame, time_unit: str) -> pl.LazyFrame:
    """customer_metrics' summary (days) as the models' input in `time_unit`, buyers only."""
    per_unit = DAYS_PER_UNIT[time_unit]
    return metrics.filter(pl.col("first_purchase_date").is_not_null()).select(
        "customer_id",
        pl.col("repeat_purchases").cast(pl.Float64),
        (pl.col("recency_days") / per_unit).alias("recency"),
        (pl.col("age_days") / per_unit).alias("age"),
        pl.col("monetary_value").fill_null(0.0),
    )


def fit_purchase_models(metrics: pl.DataFrame, settings: Settings) -> PurchaseModels:
    """Fit BG/NBD on the repeat-purchase summary and Gamma-Gamma on repeat buyers (SPEC §6).

    A model that cannot be fitted (too few customers, nobody repeat-buying, no
    finite optimum) is recorded with its reason. A fitted model that did not
    converge (a parameter at its search bound, a gradient not small) or whose
    predictions are not finite is recorded with its parameters but not used.
    Its columns are then null for everyone — never NaN, never half a
    prediction: without BG/NBD all four probabilistic columns, without
    Gamma-Gamma the value per purchase and the CLV (P(alive) and expected
    purchases stand alone). The other CLV methods are unaffected.
    """
    time_unit = settings.model.time_unit
    summary = repeat_purchase_summary_in_units(metrics.lazy(), time_unit).collect()
    arrays = [summary[c].to_numpy() for c in ("repeat_purchases", "recency", "age")]
    bgnbd = gamma_gamma = None
    bgnbd_error = gamma_gamma_error = None
    try:
        bgnbd = fit_bgnbd(*arrays)
    except ModelFitError as exc:
        bgnbd_error = str(exc)
    try:
        gamma_gamma = fit_gamma_gamma(arrays[0], summary["monetary_value"].to_numpy())
    except ModelFitError as exc:
        gamma_gamma_error = str(exc)
    unused = {
        "bgnbd": None if bgnbd is None or bgnbd.converged else "the fit did not converge",
        "gamma_gamma": (
            None if gamma_gamma is None or gamma_gamma.converged else "the fit did not converge"
        ),
    }
    if bgnbd is not None and unused["bgnbd"] is None:
        try:
            probabilistic_value(
                summary.lazy(),
                bgnbd,
                gamma_gamma if unused["gamma_gamma"] is None else None,
                horizon_months=settings.model.horizon_months,
                discount_rate=settings.model.discount_rate,
                time_unit=time_unit,
            )
        except PredictionError as exc:
            unused[exc.model] = str(exc)
    return PurchaseModels(
        bgnbd, gamma_gamma, time_unit, bgnbd_error, gamma_gamma_error, *unused.values()
    )


LEFT_NULL = {
    "bgnbd": "every probabilistic column left null",
    "gamma_gamma": "expected_value_per_purchase and clv_probabilistic left null",
}


def model_fit(models: PurchaseModels) -> pl.DataFrame:
    """`model_fit`: one row per fitted parameter (or one row saying why a model is absent).

    The message says whether the fit converged, how the optimiser stopped, and —
    for a model not used — which columns were left null and why.
    """
    rows: list[dict[str, object]] = []
    fits = {
        "bgnbd": (models.bgnbd, ("r", "alpha", "a", "b"), models.bgnbd_error, models.bgnbd_unused),
        "gamma_gamma": (
            models.gamma_gamma,
            ("p", "q", "v"),
            models.gamma_gamma_error,
            models.gamma_gamma_unused,
        ),
    }
    for model, (fit, names, error, unused) in fits.items():
        if fit is None:
            rows.append(
                {"model": model, "parameter": "(not fitted)", "value": None,
                 "log_likelihood": None, "customers": 0, "converged": False,
                 "time_unit": models.time_unit, "message": f"{error}: {LEFT_NULL[model]}"}
            )  # fmt: skip
            continue
        message = fit.message if unused is None else f"{fit.message}; not used ({unused}): "
        message += "" if unused is None else LEFT_NULL[model]
        rows.extend(
            {"model": model, "parameter": name, "value": float(getattr(fit, name)),
             "log_likelihood": fit.log_likelihood, "customers": fit.customers,
             "converged": fit.converged, "time_unit": models.time_unit, "message": message}
            for name in names
        )  # fmt: skip
    return pl.DataFrame(rows, schema=MODEL_FIT_SCHEMA)


MODEL_FIT_SCHEMA = {
    "model": pl.String,
    "parameter": pl.String,
    "value": pl.Float64,
    "log_likelihood": pl.Float64,
    "customers": pl.Int64,
    "converged": pl.Boolean,
    "time_unit": pl.String,
    "message": pl.String,
}

PROBABILISTIC_COLUMNS = {
    "p_alive": pl.Float64,
    "expected_purchases": pl.Float64,
    "expected_value_per_purchase": pl.Float64,
    "clv_probabilistic": pl.Float64,
}


def probabilistic_columns(
    metrics: pl.LazyFrame, models: PurchaseModels, settings: Settings
) -> pl.LazyFrame:
    """customer_id + P(alive), expected purchases/value and discounted CLV.

    Null for everyone where the model behind a column is absent or not used
    (see `fit_purchase_models`).
    """
    bgnbd = models.usable_bgnbd
    if bgnbd is None:
        return metrics.select(
            "customer_id",
            *(pl.lit(None, dtype=t).alias(c) for c, t in PROBABILISTIC_COLUMNS.items()),
        )
    # fit_purchase_models already predicted for this summary: this cannot raise PredictionError.
    return probabilistic_value(
        repeat_purchase_summary_in_units(metrics, models.time_unit),
        bgnbd,
        models.usable_gamma_gamma,
        horizon_months=settings.model.horizon_months,
        discount_rate=settings.model.discount_rate,
        time_unit=models.time_unit,
    )


def with_p_alive(metrics: pl.LazyFrame, models: PurchaseModels, settings: Settings) -> pl.LazyFrame:
    """customer_metrics with `p_alive` from the fitted BG/NBD (null for prospects).

    P(alive) is closed-form (FHL note 021): the horizon's predictions, which
    `fit_purchase_models` has already checked, are not needed for it. Null for
    everyone when the BG/NBD fit is absent or not used, as in customer_value.
    """
    bgnbd = models.usable_bgnbd
    summary = repeat_purchase_summary_in_units(metrics, models.time_unit).collect()
    column = (
        pl.Series(
            "p_alive",
            p_alive(bgnbd, *(summary[c] for c in ("repeat_purchases", "recency", "age"))),
            dtype=pl.Float64,
            nan_to_null=True,
        )
        if bgnbd is not None
        else pl.lit(None, dtype=pl.Float64).alias("p_alive")
    )
    return (
        metrics.drop("p_alive")
        .join(
            summary.select("customer_id").with_columns(column).lazy(),
            on="customer_id",
            how="left",
        )
        .select(columns_of("customer_metrics"))
    )


def customer_value(
    metrics: pl.LazyFrame, churn_table: pl.LazyFrame, models: PurchaseModels, settings: Settings
) -> pl.LazyFrame:
    """`customer_value`: every SPEC §6 method side by side with the inputs r, T, i, horizon."""
    valued = lifetime_values(
        metrics.drop("p_alive"), churn_table, settings.value, settings.model.discount_rate
    )
    return (
        valued.join(probabilistic_columns(metrics, models, settings), on="customer_id", how="left")
        .with_columns(pl.lit(settings.model.horizon_months).cast(pl.Int64).alias("horizon_months"))
        .select(columns_of("customer_value"))
        .sort("customer_id")
    )


TIER_ATTRIBUTES = ("segment", "region", "risk_profile", "aum")


def customer_tiers(
    metrics: pl.LazyFrame, value: pl.LazyFrame, customers: pl.LazyFrame, settings: Settings
) -> pl.LazyFrame:
    """`customer_tiers`: tier and action per customer and rule set (SPEC §8).

    Rule sets may tier on any column of customer_metrics or customer_value or
    on a customer attribute (segment, region, risk_profile, aum).
    """
    attributes = customers.select("customer_id", *(a for a in TIER_ATTRIBUTES if a != "segment"))
    candidates = metrics.join(
        value.drop("segment", "lifecycle_stage", "p_alive"), on="customer_id"
    ).join(attributes, on="customer_id", how="left")
    return (
        tier_rules.customer_tiers(candidates, settings.tiers)
        .select(columns_of("customer_tiers"))
        .sort("rule_set", "customer_id")
    )


def customer_equity(
    value: pl.LazyFrame,
    metrics: pl.LazyFrame,
    tiers: pl.LazyFrame,
    churn_table: pl.LazyFrame,
    settings: Settings,
) -> pl.LazyFrame:
    """`customer_equity` per whole base, segment and value tier of the main rule set (SPEC §7).

    Base and segments take their r from `churn_table` (the `churn` table of D).
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
    return equity_rules.customer_equity(
        valued, churn_table, settings.value, settings.model.discount_rate
    )


def model_calibration(
    inputs: Inputs, calibration_end: date, as_of: date, settings: Settings
) -> pl.DataFrame:
    """`model_calibration`: fit BG/NBD up to `calibration_end`, predict the holdout up to D.

    The standard validation of SPEC §6: for every customer who bought by the
    cut-off, actual purchase days in (cut-off, D] against the model's
    expectation, averaged per calibration repeat-purchase bucket. An optional
    diagnostic: when BG/NBD cannot be fitted on the calibration period, does
    not converge or predicts no finite value, the actual side is still
    published, the prediction is null and `message` says why.
    """
    time_unit = settings.model.time_unit
    calibration = customer_metrics(inputs, calibration_end, settings)
    summary = repeat_purchase_summary_in_units(calibration, time_unit).collect()
    holdout_days = (as_of - calibration_end).days
    later = (
        purchase_dates(inputs.as_of(as_of).transactions)
        .filter(pl.col("transaction_date") > calibration_end)
        .group_by("customer_id")
        .agg(pl.col("transaction_date").n_unique().alias("holdout_purchases"))
    )
    observed = summary.join(later.collect(), on="customer_id", how="left").with_columns(
        pl.col("holdout_purchases").fill_null(0)
    )
    arrays = [observed[c].to_numpy() for c in ("repeat_purchases", "recency", "age")]
    holdout = (holdout_days / DAYS_PER_UNIT[time_unit], observed["holdout_purchases"].to_numpy())
    fit: BgNbdFit | None = None
    try:
        fit = fit_bgnbd(*arrays)
        message = fit.message
        if not fit.converged:
            fit, message = None, f"BG/NBD not used: {message}"
        table = calibration_holdout_table(fit, *arrays, *holdout)
    except ModelFitError as exc:
        message = f"BG/NBD not fitted on the calibration period: {exc}"
        table = calibration_holdout_table(None, *arrays, *holdout)
    return table.rename({"frequency_bucket": "repeat_purchases_bucket"}).with_columns(
        pl.lit(calibration_end).alias("calibration_end"),
        pl.lit(holdout_days).cast(pl.Int64).alias("holdout_days"),
        pl.lit(message).alias("message"),
    )
