"""The purchase models of one as-of date: fit, record and apply BG/NBD and Gamma-Gamma (SPEC §6).

The fits need only the repeat-purchase summaries of all customers, and
summaries repeat a lot, so each bucket of customers contributes its distinct
summary rows with the number of customers behind each (`repeat_purchase_rows`,
`spend_rows`); the fits weight the rows and are identical whatever the
bucketing. Applying a fit (P(alive), expected purchases and value) is per
customer. The maths lives in `transforms.bgnbd`, `transforms.gamma_gamma` and
`transforms.probabilistic` (the two combined).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

import numpy as np
import polars as pl

from customer_equity.schemas.outputs import polars_schema
from customer_equity.settings import Settings
from customer_equity.transforms.bgnbd import BgNbdFit, fit_bgnbd, p_alive
from customer_equity.transforms.gamma_gamma import (
    GammaGammaFit,
    expected_value_per_purchase,
    fit_gamma_gamma,
)
from customer_equity.transforms.maximum_likelihood import ModelFitError, PredictionError
from customer_equity.transforms.probabilistic import (
    DAYS_PER_TIME_UNIT,
    calibration_holdout_table,
    probabilistic_value,
)


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

    @property
    def usable_bgnbd(self) -> BgNbdFit | None:
        return self.bgnbd if self.bgnbd_unused is None else None

    @property
    def usable_gamma_gamma(self) -> GammaGammaFit | None:
        return self.gamma_gamma if self.gamma_gamma_unused is None else None

    def to_record(self) -> dict[str, object]:
        """Plain values, small enough to pass between flow tasks or store as JSON."""
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


def buyers_summary(metrics: pl.LazyFrame) -> pl.LazyFrame:
    """The repeat-purchase summary (days) of the customers who bought: the models' input."""
    return metrics.filter(pl.col("first_purchase_date").is_not_null()).select(
        "customer_id",
        "repeat_purchases",
        "recency_days",
        "age_days",
        pl.col("monetary_value").fill_null(0.0),
    )


def repeat_purchase_rows(metrics: pl.LazyFrame) -> pl.LazyFrame:
    """Distinct (repeat_purchases, recency_days, age_days) of buyers with the customers behind each.

    Rows of several buckets are simply concatenated: the fit adds up equal rows.
    """
    return (
        buyers_summary(metrics)
        .group_by("repeat_purchases", "recency_days", "age_days")
        .agg(pl.len().cast(pl.Int64).alias("customers"))
    )


def spend_rows(metrics: pl.LazyFrame) -> pl.LazyFrame:
    """Distinct (repeat_purchases, monetary_value) of buyers with the customers behind each."""
    return (
        buyers_summary(metrics)
        .group_by("repeat_purchases", "monetary_value")
        .agg(pl.len().cast(pl.Int64).alias("customers"))
    )


def _in_units(days: pl.Expr, time_unit: str) -> pl.Expr:
    return days.cast(pl.Float64) / DAYS_PER_TIME_UNIT[time_unit]


def fit_purchase_models(
    repeat_purchases: pl.LazyFrame, spend: pl.LazyFrame, settings: Settings
) -> PurchaseModels:
    """Fit BG/NBD on the repeat-purchase rows and Gamma-Gamma on the spend rows (SPEC §6).

    A model that cannot be fitted (too few customers, nobody repeat-buying, no
    finite optimum) is recorded with its reason. A fitted model that did not
    converge (a parameter at its search bound, a gradient not small) or whose
    predictions are not finite for some customer is recorded with its
    parameters but not used. Its columns are then null for everyone — never
    NaN, never half a prediction: without BG/NBD all four probabilistic
    columns, without Gamma-Gamma the value per purchase and the CLV (P(alive)
    and expected purchases stand alone). The other CLV methods are unaffected.
    Predictions depend only on a customer's summary, so checking the distinct
    rows checks every customer before any bucket applies the model.
    """
    time_unit = settings.model.time_unit
    rows = repeat_purchases.select(
        pl.col("repeat_purchases").cast(pl.Float64),
        _in_units(pl.col("recency_days"), time_unit).alias("recency"),
        _in_units(pl.col("age_days"), time_unit).alias("age"),
        "customers",
    ).collect()
    spent = spend.select(
        pl.col("repeat_purchases").cast(pl.Float64), "monetary_value", "customers"
    ).collect()
    bgnbd = gamma_gamma = None
    bgnbd_error = gamma_gamma_error = None
    try:
        bgnbd = fit_bgnbd(
            *(rows[c].to_numpy() for c in ("repeat_purchases", "recency", "age")),
            weights=rows["customers"].to_numpy(),
        )
    except ModelFitError as exc:
        bgnbd_error = str(exc)
    try:
        gamma_gamma = fit_gamma_gamma(
            spent["repeat_purchases"].to_numpy(),
            spent["monetary_value"].to_numpy(),
            weights=spent["customers"].to_numpy(),
        )
    except ModelFitError as exc:
        gamma_gamma_error = str(exc)
    not_converged = "the fit did not converge"
    bgnbd_unused = None if bgnbd is None or bgnbd.converged else not_converged
    gamma_gamma_unused = None if gamma_gamma is None or gamma_gamma.converged else not_converged
    if bgnbd is not None and bgnbd_unused is None:
        bgnbd_unused = _unfinite_purchases(bgnbd, rows, settings)
    if gamma_gamma is not None and gamma_gamma_unused is None:
        values = expected_value_per_purchase(
            gamma_gamma, spent["repeat_purchases"].to_numpy(), spent["monetary_value"].to_numpy()
        )
        gamma_gamma_unused = _unfinite("expected_value_per_purchase", values, spent["customers"])
    return PurchaseModels(
        bgnbd,
        gamma_gamma,
        time_unit,
        bgnbd_error,
        gamma_gamma_error,
        bgnbd_unused,
        gamma_gamma_unused,
    )


def _unfinite(name: str, values: np.ndarray, customers: pl.Series) -> str | None:
    """Why a column cannot be used: the customers for whom it is not finite (None: all are)."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    weights = customers.to_numpy()
    return (
        f"{name} is not finite for {int(weights[bad].sum()):,} of {int(weights.sum()):,} "
        "customers at these parameters"
    )


def _unfinite_purchases(bgnbd: BgNbdFit, rows: pl.DataFrame, settings: Settings) -> str | None:
    """P(alive) and expected purchases over the horizon, checked on every distinct summary."""
    summary = rows.with_row_index("customer_id").with_columns(
        pl.col("customer_id").cast(pl.String),
        pl.lit(None, dtype=pl.Float64).alias("monetary_value"),
    )
    try:
        probabilistic_value(
            summary.lazy(),
            bgnbd,
            None,
            horizon_months=settings.model.horizon_months,
            discount_rate=settings.model.discount_rate,
            time_unit=settings.model.time_unit,
        )
    except PredictionError as exc:
        return f"{exc} (counted in distinct customer summaries)"
    return None


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
    return pl.DataFrame(rows, schema=polars_schema("model_fit"))


PROBABILISTIC_COLUMNS = (
    "p_alive",
    "expected_purchases",
    "expected_value_per_purchase",
    "clv_probabilistic",
)


def probabilistic_columns(
    metrics: pl.LazyFrame, models: PurchaseModels, settings: Settings
) -> pl.LazyFrame:
    """customer_id + P(alive), expected purchases/value and discounted CLV (null if unfitted).

    Null for everyone where the model behind a column is absent or not used
    (see `fit_purchase_models`). Per customer: any subset of customers gives
    its own rows unchanged.
    """
    bgnbd = models.usable_bgnbd
    if bgnbd is None:
        return metrics.select(
            "customer_id",
            *(pl.lit(None, dtype=pl.Float64).alias(c) for c in PROBABILISTIC_COLUMNS),
        )
    time_unit = models.time_unit
    summary = buyers_summary(metrics).select(
        "customer_id",
        pl.col("repeat_purchases").cast(pl.Float64),
        _in_units(pl.col("recency_days"), time_unit).alias("recency"),
        _in_units(pl.col("age_days"), time_unit).alias("age"),
        "monetary_value",
    )
    # fit_purchase_models checked every distinct summary: this cannot raise PredictionError.
    return probabilistic_value(
        summary,
        bgnbd,
        models.usable_gamma_gamma,
        horizon_months=settings.model.horizon_months,
        discount_rate=settings.model.discount_rate,
        time_unit=time_unit,
    )


def p_alive_column(metrics: pl.LazyFrame, models: PurchaseModels) -> pl.LazyFrame:
    """customer_id + P(alive) of the fitted BG/NBD (null for prospects, or for everyone unused).

    Closed form (FHL note 021): the horizon's predictions, which
    `fit_purchase_models` has already checked, are not needed for it.
    """
    bgnbd = models.usable_bgnbd
    if bgnbd is None:
        return metrics.select("customer_id", pl.lit(None, dtype=pl.Float64).alias("p_alive"))
    summary = (
        buyers_summary(metrics)
        .select(
            "customer_id",
            pl.col("repeat_purchases").cast(pl.Float64),
            _in_units(pl.col("recency_days"), models.time_unit).alias("recency"),
            _in_units(pl.col("age_days"), models.time_unit).alias("age"),
        )
        .collect()
    )
    values = p_alive(bgnbd, *(summary[c] for c in ("repeat_purchases", "recency", "age")))
    return summary.select(
        "customer_id", pl.Series("p_alive", values, dtype=pl.Float64, nan_to_null=True)
    ).lazy()


def calibration_rows(
    calibration_metrics: pl.LazyFrame, holdout_purchases: pl.LazyFrame
) -> pl.LazyFrame:
    """Distinct calibration summaries with their customers and holdout purchase days (summed).

    `calibration_metrics` is customer_metrics as of the cut-off;
    `holdout_purchases` has customer_id, holdout_purchases (purchase days after
    the cut-off, up to D). Rows of several buckets are concatenated.
    """
    return (
        buyers_summary(calibration_metrics)
        .join(holdout_purchases, on="customer_id", how="left")
        .group_by("repeat_purchases", "recency_days", "age_days")
        .agg(
            pl.len().cast(pl.Int64).alias("customers"),
            pl.col("holdout_purchases").fill_null(0).sum().cast(pl.Int64),
        )
    )


def model_calibration(
    rows: pl.LazyFrame, calibration_end: date, as_of: date, settings: Settings
) -> pl.DataFrame:
    """`model_calibration`: fit BG/NBD up to `calibration_end`, predict the holdout up to D.

    The standard validation of SPEC §6 from `calibration_rows` of every bucket:
    actual purchase days in (cut-off, D] against the model's expectation,
    averaged per calibration repeat-purchase bucket. An optional diagnostic:
    when BG/NBD cannot be fitted on the calibration period, does not converge
    or predicts no finite value, the actual side is still published, the
    prediction is null and `message` says why.
    """
    time_unit = settings.model.time_unit
    holdout_days = (as_of - calibration_end).days
    # Equal summaries of several buckets are one row, in one fixed order.
    summed = (
        rows.group_by("repeat_purchases", "recency_days", "age_days")
        .agg(pl.col("customers").sum(), pl.col("holdout_purchases").sum())
        .sort("repeat_purchases", "recency_days", "age_days")
        .select(
            pl.col("repeat_purchases").cast(pl.Float64),
            _in_units(pl.col("recency_days"), time_unit).alias("recency"),
            _in_units(pl.col("age_days"), time_unit).alias("age"),
            "customers",
            "holdout_purchases",
        )
        .collect()
    )
    arrays = [summed[c].to_numpy() for c in ("repeat_purchases", "recency", "age")]
    weights = summed["customers"].to_numpy()
    holdout = (holdout_days / DAYS_PER_TIME_UNIT[time_unit], summed["holdout_purchases"].to_numpy())
    fit: BgNbdFit | None = None
    try:
        fit = fit_bgnbd(*arrays, weights=weights)
        message = fit.message
        if not fit.converged:
            fit, message = None, f"BG/NBD not used: {message}"
        table = calibration_holdout_table(fit, *arrays, *holdout, weights=weights)
    except ModelFitError as exc:
        message = f"BG/NBD not fitted on the calibration period: {exc}"
        table = calibration_holdout_table(None, *arrays, *holdout, weights=weights)
    return table.rename({"frequency_bucket": "repeat_purchases_bucket"}).with_columns(
        pl.lit(calibration_end).alias("calibration_end"),
        pl.lit(holdout_days).cast(pl.Int64).alias("holdout_days"),
        pl.lit(message).alias("message"),
    )
