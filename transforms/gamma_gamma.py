"""Gamma-Gamma: what a customer spends per purchase (SPEC §3 monetary, §6 probabilistic).

Fit by maximum likelihood on the repeat buyers' mean spend (GG note 025 eq. 1a),
then per customer the expected value of one purchase (eq. 5). Money is rescaled
internally (mean spend) so one set of parameter bounds fits any currency;
reported parameters and log-likelihoods are in the caller's unit.

References: Fader, Hardie & Lee (2005b) "RFM and CLV: Using Iso-Value Curves for
Customer Base Analysis", JMR 42(4), and Fader & Hardie (2013) "The Gamma-Gamma
Model of Monetary Value" (note 025) [GG].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from customer_equity.transforms.maximum_likelihood import (
    FloatArray,
    ModelFitError,
    as_float_vector,
    check_frequency,
    collapse_rows,
    customer_weights,
    maximise,
)


@dataclass(frozen=True, slots=True)
class GammaGammaFit:
    """Gamma-Gamma spend-model estimates (GG note 025 eq. 1a) in the monetary unit.

    Spend per purchase ~ Gamma(p, ν), ν ~ Gamma(q, v) across customers; the
    population mean spend p·v/(q − 1) needs q > 1, which `fit_gamma_gamma`
    guarantees. Fields as for `BgNbdFit`.
    """

    p: float
    q: float
    v: float
    log_likelihood: float
    customers: int
    converged: bool
    message: str


def fit_gamma_gamma(
    frequency: ArrayLike,
    monetary: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    min_customers: int = 10,
) -> GammaGammaFit:
    """Fit the Gamma-Gamma spend model by maximum likelihood (SPEC §3 monetary, §6).

    Implements the marginal density of a customer's mean spend z̄ over x purchases
    (GG note 025 eq. 1a; FHL 2005b):
    f(z̄ | p, q, v, x) = Γ(px + q) / (Γ(px) Γ(q)) · v^q z̄^(px−1) x^(px) / (v + x z̄)^(px+q).
    Only customers with x > 0 and z̄ > 0 enter (the model describes the positive
    spend of repeat purchases); identical (x, z̄) rows are collapsed.

    Raises `ModelFitError` with fewer than `min_customers` such customers (in
    particular when nobody repeat-bought), without a finite optimum, or when
    q ≤ 1 (no finite population mean spend, so no value for new customers).
    Fallback for the pipeline: catch it and leave expected value per purchase
    and the probabilistic CLV null; P(alive) and expected purchases stand alone.
    """
    x = as_float_vector(frequency, "frequency")
    spend = as_float_vector(monetary, "monetary")
    if spend.shape != x.shape:
        raise ValueError(f"frequency and monetary differ in length: {x.size} vs {spend.size}")
    check_frequency(x, allow_missing=False)
    counts = customer_weights(weights, x.shape)
    if not np.all(np.isfinite(spend[x > 0])):
        raise ValueError("monetary must be finite for every customer with a repeat purchase")
    usable = (x > 0) & (spend > 0) & (counts > 0)
    customers = int(counts[usable].sum())
    if customers < min_customers:
        raise ModelFitError(
            f"Gamma-Gamma needs at least {min_customers} customers with repeat purchases "
            f"of positive value, got {customers}"
        )
    excluded = int(counts[(x > 0) & (spend <= 0)].sum())
    (x, spend), counts = collapse_rows((x[usable], spend[usable]), counts[usable])
    money_scale = float(np.average(spend, weights=counts))
    data = _GammaGammaData.of(x, spend / money_scale, counts)
    start = np.log([1.0, 2.0, 1.0])  # p = 1, q = 2, v = 1: mean spend p·v/(q−1) = 1 = the scale
    (p, q, v), mean_log_likelihood, converged, message = maximise(
        data.negative_mean_log_likelihood, start, ("p", "q", "v")
    )
    if q <= 1:
        raise ModelFitError(
            f"Gamma-Gamma fit gives q = {q:.4g} ≤ 1: the population mean spend p·v/(q−1) "
            "is not finite (spend too heavy-tailed for the model)"
        )
    if excluded:
        message = f"{message}; {excluded} repeat buyers with monetary ≤ 0 left out"
    # Undo the money rescaling: each customer's density scales by 1 / money_scale.
    log_likelihood = (mean_log_likelihood - np.log(money_scale)) * data.customers
    return GammaGammaFit(
        p=p,
        q=q,
        v=v * money_scale,
        log_likelihood=float(log_likelihood),
        customers=customers,
        converged=converged,
        message=message,
    )


@dataclass(frozen=True, slots=True)
class _GammaGammaData:
    """Collapsed repeat buyers (x > 0, z̄ > 0) as the Gamma-Gamma likelihood consumes them.

    Everything but ln(v + x z̄) is either a sum over distinct x or a constant of
    the data, precomputed once.
    """

    distinct_frequency: FloatArray
    customers_per_frequency: FloatArray
    customers: float
    counts: FloatArray
    total_spend: FloatArray  # x · z̄ per distinct row
    frequency: FloatArray
    sum_log_spend: float  # Σ customers · ln z̄
    sum_x_log_spend: float  # Σ customers · x ln z̄

    @classmethod
    def of(cls, x: FloatArray, spend: FloatArray, counts: FloatArray) -> _GammaGammaData:
        distinct_frequency, frequency_index = np.unique(x, return_inverse=True)
        log_spend = np.log(spend)
        return cls(
            distinct_frequency=distinct_frequency,
            customers_per_frequency=np.bincount(frequency_index, weights=counts),
            customers=float(counts.sum()),
            counts=counts,
            total_spend=x * spend,
            frequency=x,
            sum_log_spend=float(np.dot(counts, log_spend)),
            sum_x_log_spend=float(np.dot(counts * x, log_spend)),
        )

    def negative_mean_log_likelihood(self, log_params: FloatArray) -> tuple[float, FloatArray]:
        """−mean ln f of GG note 025 eq. (1a) and its gradient in (ln p, ln q, ln v)."""
        p, q, v = np.exp(log_params)
        xs, by_x = self.distinct_frequency, self.customers_per_frequency
        n = self.customers
        pxs = p * xs
        log_v_total = np.log(v + self.total_spend)
        shape_weights = self.counts * (p * self.frequency + q)  # customers · (px + q)
        log_likelihood = (
            np.dot(by_x, special.gammaln(pxs + q) - special.gammaln(pxs) + pxs * np.log(xs))
            + n * (q * np.log(v) - special.gammaln(q))
            + p * self.sum_x_log_spend
            - self.sum_log_spend
            - np.dot(shape_weights, log_v_total)
        )
        digamma_pxq = special.digamma(pxs + q)
        d_p = (
            np.dot(by_x, xs * (digamma_pxq - special.digamma(pxs) + np.log(xs)))
            + self.sum_x_log_spend
            - np.dot(self.counts * self.frequency, log_v_total)
        )
        d_q = (
            np.dot(by_x, digamma_pxq)
            + n * (np.log(v) - special.digamma(q))
            - np.dot(self.counts, log_v_total)
        )
        d_v = n * q / v - np.dot(shape_weights, 1.0 / (v + self.total_spend))
        gradient = np.array([p * d_p, q * d_q, v * d_v])
        return -float(log_likelihood) / n, -gradient / n


def expected_value_per_purchase(
    fit_gg: GammaGammaFit, frequency: ArrayLike, monetary: ArrayLike
) -> FloatArray:
    """E[spend per purchase | x, z̄] — SPEC §6; GG note 025 eq. (5).

    E = (v + x z̄) p / (px + q − 1): a credibility-weighted mean of the customer's
    own z̄ (weight px/(px + q − 1)) and the population mean p·v/(q − 1), which is
    what a customer with x = 0 gets (their monetary value is ignored). A repeat
    buyer with z̄ ≤ 0 (negative margin) is outside the model's support; the same
    linear shrinkage is applied so a loss-making customer keeps a low value.
    """
    x = as_float_vector(frequency, "frequency")
    spend = as_float_vector(monetary, "monetary")
    if spend.shape != x.shape:
        raise ValueError(f"frequency and monetary differ in length: {x.size} vs {spend.size}")
    check_frequency(x, allow_missing=True)
    own_total = np.where(x > 0, x * spend, 0.0)
    value = (fit_gg.v + own_total) * fit_gg.p / (fit_gg.p * x + fit_gg.q - 1)
    return np.where(np.isnan(x), np.nan, value)
