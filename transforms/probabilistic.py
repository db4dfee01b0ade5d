"""Probabilistic customer lifetime value: BG/NBD × Gamma-Gamma (SPEC §6, probabilistic method).

The two models live in `transforms.bgnbd` and `transforms.gamma_gamma`, what
their fits share in `transforms.maximum_likelihood`; this module combines them
into the published columns (P(alive), expected purchases and value, the
discounted CLV) and into the calibration/holdout check of SPEC §6.
`transforms.models` fits and applies them for the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from customer_equity.transforms.bgnbd import (
    BgNbdFit,
    expected_purchases,
    p_alive,
    purchases_if_alive,
)
from customer_equity.transforms.gamma_gamma import GammaGammaFit, expected_value_per_purchase
from customer_equity.transforms.maximum_likelihood import (
    FloatArray,
    PredictionError,
    as_float_vector,
    customer_weights,
    summary_arrays,
    unique_rows,
)

DAYS_PER_MONTH = 365.25 / 12
DAYS_PER_TIME_UNIT = {"days": 1.0, "weeks": 7.0}


def _monthly_discount_factors(horizon_months: int, discount_rate: float) -> FloatArray:
    """1 / (1 + i)^(m/12) for months m = 1..H: money of month m counts at its end."""
    if not discount_rate > -1:
        raise ValueError(f"discount_rate must be > −1, got {discount_rate}")
    return (1.0 + discount_rate) ** (-np.arange(1, horizon_months + 1) / 12.0)


@dataclass(frozen=True, slots=True)
class _MonthlyPurchases:
    """Expected purchases per customer and month, stored once per distinct (x, T).

    By FHL eq. (10), E[purchases in month m] = P(alive) · g(x, T, m) where g does
    not depend on t_x, so g is a (distinct (x, T)) × months matrix and any
    weighting over months (discounting, plain total) is one weighted sum per row.
    """

    alive: FloatArray  # P(alive) per customer, NaN where the summary is missing
    if_alive: FloatArray  # distinct (x, T) × months: purchases in month m if alive at T
    distinct_row: NDArray[np.intp]  # known customer -> row of `if_alive`
    known: NDArray[np.bool_]

    @classmethod
    def of(
        cls,
        fit: BgNbdFit,
        x: FloatArray,
        t_x: FloatArray,
        age: FloatArray,
        horizon_months: int,
        time_unit: str,
    ) -> _MonthlyPurchases:
        if horizon_months < 1:
            raise ValueError(f"horizon_months must be ≥ 1, got {horizon_months}")
        month_ends = np.arange(horizon_months + 1) * _month_length(time_unit)
        known = ~np.isnan(x + t_x + age)
        (x_u, age_u), distinct_row = unique_rows((x[known], age[known]))
        cumulative = purchases_if_alive(fit, x_u[:, None], age_u[:, None], month_ends[None, :])
        return cls(
            alive=p_alive(fit, x, t_x, age),
            if_alive=np.diff(cumulative, axis=1),
            distinct_row=distinct_row,
            known=known,
        )

    def weighted_sum(self, month_weights: FloatArray) -> FloatArray:
        """Per customer: P(alive) · Σ_m weight_m · E[purchases in month m | alive]."""
        result = np.full(self.alive.shape, np.nan)
        # A row-wise sum, not a matrix product: BLAS blocks a product by the matrix's
        # size, so a customer's value would change in the last bit with the number
        # of other customers computed beside it (e.g. the bucket it lands in).
        per_distinct = np.sum(self.if_alive * month_weights, axis=1)
        result[self.known] = self.alive[self.known] * per_distinct[self.distinct_row]
        return result


# --------------------------------------------------------------------------- Polars


def probabilistic_value(
    summary: pl.LazyFrame,
    bgnbd: BgNbdFit,
    gamma_gamma: GammaGammaFit | None,
    *,
    horizon_months: int,
    discount_rate: float,
    time_unit: str,
) -> pl.LazyFrame:
    """Per-customer P(alive), expected purchases/value and CLV (SPEC §6, columns of SPEC §9).

    `summary` has customer_id, repeat_purchases, recency, age (in `time_unit`,
    the unit the fits were made in) and monetary_value. Returns customer_id,
    p_alive (FHL note 021), expected_purchases over `horizon_months` (FHL eq. 10),
    expected_value_per_purchase (GG note 025 eq. 5) and clv_probabilistic,
    monthly discounted (FHL eq. 10 × GG eq. 5):
    CLV = Σ_{m=1..H} (E[Y(m·M)] − E[Y((m−1)·M)]) · E[spend] / (1 + i)^(m/12),
    with Y(t) the conditional expected purchases, M one month (365.25/12 days)
    in `time_unit` and i the annual discount rate: purchases of month m are
    discounted at its end. The last two columns are null without a Gamma-Gamma fit.
    The BG/NBD part is evaluated once per distinct (x, T).
    Missing inputs give nulls, never NaN. A model whose prediction is not
    finite for a customer with complete inputs raises `PredictionError`: a
    column is published for everyone or for no one, never half. Collects
    `summary` (the maths is numpy), does no I/O and leaves the input untouched.
    """
    frame = summary.select(
        "customer_id",
        pl.col("repeat_purchases", "recency", "age", "monetary_value").cast(pl.Float64),
    ).collect()
    x, t_x, age_, spend = (
        frame[name].to_numpy().astype(np.float64, copy=False)
        for name in ("repeat_purchases", "recency", "age", "monetary_value")
    )
    x, t_x, age_ = summary_arrays(x, t_x, age_, allow_missing=True)
    monthly = _MonthlyPurchases.of(bgnbd, x, t_x, age_, horizon_months, time_unit)
    columns: dict[str, FloatArray | None] = {
        "p_alive": monthly.alive,
        "expected_purchases": monthly.weighted_sum(np.ones(horizon_months)),
        "expected_value_per_purchase": None,
        "clv_probabilistic": None,
    }
    if gamma_gamma is not None:
        value = expected_value_per_purchase(gamma_gamma, x, spend)
        discount = _monthly_discount_factors(horizon_months, discount_rate)
        columns["expected_value_per_purchase"] = value
        columns["clv_probabilistic"] = monthly.weighted_sum(discount) * value
    _check_finite(
        "bgnbd",
        monthly.known,
        p_alive=columns["p_alive"],
        expected_purchases=columns["expected_purchases"],
    )
    _check_finite(
        "gamma_gamma",
        monthly.known & np.isfinite(spend),
        expected_value_per_purchase=columns["expected_value_per_purchase"],
        clv_probabilistic=columns["clv_probabilistic"],
    )
    return (
        frame.select("customer_id")
        .with_columns(
            pl.Series(name, values, dtype=pl.Float64, nan_to_null=True)
            if values is not None
            else pl.lit(None, dtype=pl.Float64).alias(name)
            for name, values in columns.items()
        )
        .lazy()
    )


def _check_finite(model: str, rows: NDArray[np.bool_], **columns: FloatArray | None) -> None:
    """Raise `PredictionError` naming `model` if a column is not finite on `rows`."""
    for name, values in columns.items():
        bad = 0 if values is None else int(np.count_nonzero(~np.isfinite(values[rows])))
        if bad:
            raise PredictionError(
                model,
                f"{name} is not finite for {bad:,} of {int(rows.sum()):,} customers "
                "at these parameters",
            )


def calibration_holdout_table(
    fit: BgNbdFit | None,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
    holdout_length: float | ArrayLike,
    holdout_purchases: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    top_bucket: int = 7,
) -> pl.DataFrame:
    """Actual vs predicted holdout purchases by calibration frequency (SPEC §6 validation).

    The standard BG/NBD check (FHL section 4, their conditional-expectation
    figure for CDNOW): fit on the calibration period, predict each customer's
    repeat purchases in the following `holdout_length` time units with FHL
    eq. (10), and compare means per calibration frequency x = 0, 1, …,
    `top_bucket`+ (the last bucket pools every x ≥ top_bucket). With `weights`,
    each row stands for that many customers and `holdout_purchases` is their
    total. Columns: frequency_bucket ("0", …, "7+"), customers,
    actual_holdout_purchases and predicted_holdout_purchases (means per customer).
    Without a usable fit (`fit` None) the predictions are null and the actual
    side stands; a fit whose predictions are not finite raises `PredictionError`.
    """
    x, t_x, age_ = summary_arrays(frequency, recency, age, allow_missing=False)
    actual = as_float_vector(holdout_purchases, "holdout_purchases")
    if actual.shape != x.shape:
        raise ValueError("holdout_purchases must have one value per row")
    counts = customer_weights(weights, x.shape)
    if fit is None:
        predicted = np.full(x.shape, np.nan)
    else:
        predicted = expected_purchases(fit, holdout_length, x, t_x, age_)
        _check_finite("bgnbd", np.ones(x.shape, bool), predicted_holdout_purchases=predicted)
    bucket = np.minimum(x, top_bucket).astype(np.int64)
    # np.bincount adds in row order: the same rows give the same means, bit for bit.
    customers, actual_total, predicted_total = (
        np.bincount(bucket, weights=values, minlength=top_bucket + 1)
        for values in (counts, actual, predicted * counts)
    )
    seen = customers > 0
    labels = [str(k) for k in range(top_bucket)] + [f"{top_bucket}+"]
    return pl.DataFrame(
        {
            "frequency_bucket": [label for label, kept in zip(labels, seen, strict=True) if kept],
            "customers": customers[seen].astype(np.int64),
            "actual_holdout_purchases": actual_total[seen] / customers[seen],
            "predicted_holdout_purchases": pl.Series(
                predicted_total[seen] / customers[seen], dtype=pl.Float64, nan_to_null=True
            ),
        }
    )


# --------------------------------------------------------------------------- helpers


def _month_length(time_unit: str) -> float:
    """One month (365.25/12 days) expressed in `time_unit`."""
    if time_unit not in DAYS_PER_TIME_UNIT:
        raise ValueError(
            f"time_unit must be one of {sorted(DAYS_PER_TIME_UNIT)}, got {time_unit!r}"
        )
    return DAYS_PER_MONTH / DAYS_PER_TIME_UNIT[time_unit]
