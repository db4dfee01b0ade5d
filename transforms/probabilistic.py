"""Probabilistic customer lifetime value: BG/NBD + Gamma-Gamma (SPEC §6, probabilistic method).

Pure functions over numpy arrays (and one Polars helper) for the repeat-purchase
summary of SPEC §3: x = repeat purchase days, t_x = recency, T = age, all in one
time unit, and m = mean value of the repeat purchase days.

Why this shape:

* The fits maximise the exact log-likelihoods of the papers with scipy's
  L-BFGS-B over log-parameters and analytic gradients. Identical summary rows are
  collapsed first (whole-day summaries repeat a lot), terms of x alone or T alone
  are evaluated once per distinct value, and predictions once per distinct
  (x, T): a million customers fit and value in about two seconds.
* Time and money are rescaled internally (mean age, mean spend) so one set of
  parameter bounds fits any time unit or currency; the reported parameters and
  log-likelihoods are in the caller's units.
* A model that cannot be fitted raises `ModelFitError` (a `ValueError`) instead
  of returning NaN parameters, so the pipeline can record why and fall back.

References: Fader, Hardie & Lee (2005a) "Counting Your Customers the Easy Way:
An Alternative to the Pareto/NBD Model", Marketing Science 24(2) [FHL];
Fader, Hardie & Lee (2008) "Computing P(alive) Using the BG/NBD Model" (note 021);
Fader, Hardie & Lee (2005b) "RFM and CLV: Using Iso-Value Curves for Customer
Base Analysis", JMR 42(4), and Fader & Hardie (2013) "The Gamma-Gamma Model of
Monetary Value" (note 025) [GG].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

FloatArray = NDArray[np.float64]
Objective = Callable[[FloatArray], tuple[float, FloatArray]]

DAYS_PER_MONTH = 365.25 / 12
DAYS_PER_TIME_UNIT = {"days": 1.0, "weeks": 7.0}

# Parameters are searched in [1e-6, 1e6] after the data are rescaled to mean 1:
# wide enough for any real customer base, narrow enough that a likelihood that
# keeps improving towards 0 or infinity stops at a finite, flagged value.
_PARAMETER_RANGE = (1e-6, 1e6)
# Convergence is judged on the gradient of the *mean* log-likelihood with respect
# to the log-parameters: 1e-5 moves a parameter by far less than its standard error.
_GRADIENT_TOLERANCE = 1e-5
# FHL eq. (10) is analytic in a, but its closed form cannot be evaluated at a few
# points (see `_purchases_if_alive`); there the mean of the values at a ± this step
# is used, which is exact to O(step²), far below the parameters' sampling error.
_STEP_AROUND_A = 1e-6


class ModelFitError(ValueError):
    """The data cannot support the model; the message says what is missing.

    The pipeline catches it, records the message and leaves the probabilistic
    columns null; the annuity and retention CLVs (SPEC §6) do not depend on it.
    """


class PredictionError(ModelFitError):
    """A fitted model gives non-finite predictions (e.g. parameters at extreme values).

    `model` is "bgnbd" (P(alive), expected purchases and everything after them
    are unusable) or "gamma_gamma" (value per purchase and the CLV are).
    """

    def __init__(self, model: str, message: str) -> None:
        super().__init__(message)
        self.model = model


@dataclass(frozen=True, slots=True)
class BgNbdFit:
    """BG/NBD maximum-likelihood estimates (FHL eq. 6) in the fit's time unit.

    r, alpha: Gamma heterogeneity of the purchase rate λ (shape r, rate α in time units);
    a, b: Beta heterogeneity of the dropout probability p after each repeat purchase.
    `customers` counts the customers behind the fit; `converged` is False when
    the optimiser stopped early or a parameter sits on its search bound, which
    `message` explains. The parameters are finite either way, but the pipeline
    publishes no prediction from an unconverged fit: at a bound the predictions
    are meaningless, and can be NaN.
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    converged: bool
    message: str


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


# --------------------------------------------------------------------------- fitting


def fit_bgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    min_customers: int = 10,
) -> BgNbdFit:
    """Fit BG/NBD by maximum likelihood on the repeat-purchase summary (SPEC §3, §6).

    Implements FHL eq. (6) in the log-sum-exp form of their section 7 / note 004,
    ln L = ln A1 + ln A2 + ln(exp(ln A3) + δ(x>0) exp(ln A4)), evaluated as
    ln A1 + ln A2 + ln A3 + δ(x>0)·softplus(ln A4 − ln A3) so that large x or T
    cannot overflow. Rows with equal (x, t_x, T) are collapsed first and the
    terms that depend on x alone are summed once per distinct x, so the cost
    grows with the number of distinct summaries, not customers.

    `weights` are whole numbers: how many customers each row stands for.
    Raises `ModelFitError` for fewer than `min_customers` customers, for a base
    in which nobody made a repeat purchase (the purchase process is then not
    identified), or when no finite optimum is found. Fallback for the pipeline:
    catch it, record the message, leave P(alive) and the probabilistic CLV null
    (never zero) and rely on the annuity/retention methods of SPEC §6.
    """
    x, t_x, age_ = _summary_arrays(frequency, recency, age, allow_missing=False)
    counts = _customer_weights(weights, x.shape)
    customers = int(counts.sum())
    if customers < min_customers:
        raise ModelFitError(f"BG/NBD needs at least {min_customers} customers, got {customers}")
    if not np.any((x > 0) & (counts > 0)):
        raise ModelFitError(
            f"BG/NBD cannot be fitted: none of the {customers} customers made a repeat purchase"
        )
    t_x = np.where(x > 0, t_x, 0.0)  # t_x does not enter the likelihood when x = 0
    (x, t_x, age_), counts = _collapse_rows((x, t_x, age_), counts)
    time_scale = float(np.average(age_, weights=counts))
    if time_scale <= 0:
        raise ModelFitError("BG/NBD cannot be fitted: every customer has age 0")
    data = _BgNbdData.of(x, t_x / time_scale, age_ / time_scale, counts)
    purchase_rate = float(np.dot(counts, x) / np.dot(counts, age_ / time_scale))
    start = np.log(np.clip([1.0, 1.0 / purchase_rate, 1.0, 1.0], *_PARAMETER_RANGE))
    (r, alpha, a, b), mean_log_likelihood, converged, message = _maximise(
        data.negative_mean_log_likelihood, start, ("r", "alpha", "a", "b")
    )
    # Undo the time rescaling: each customer's density scales by time_scale^−x.
    log_likelihood = (
        mean_log_likelihood * data.customers - np.log(time_scale) * data.repeat_purchases
    )
    return BgNbdFit(
        r=r,
        alpha=alpha * time_scale,
        a=a,
        b=b,
        log_likelihood=float(log_likelihood),
        customers=customers,
        converged=converged,
        message=message,
    )


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
    x = _as_float_vector(frequency, "frequency")
    spend = _as_float_vector(monetary, "monetary")
    if spend.shape != x.shape:
        raise ValueError(f"frequency and monetary differ in length: {x.size} vs {spend.size}")
    _check_frequency(x, allow_missing=False)
    counts = _customer_weights(weights, x.shape)
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
    (x, spend), counts = _collapse_rows((x[usable], spend[usable]), counts[usable])
    money_scale = float(np.average(spend, weights=counts))
    data = _GammaGammaData.of(x, spend / money_scale, counts)
    start = np.log([1.0, 2.0, 1.0])  # p = 1, q = 2, v = 1: mean spend p·v/(q−1) = 1 = the scale
    (p, q, v), mean_log_likelihood, converged, message = _maximise(
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
class _BgNbdData:
    """A collapsed summary as the BG/NBD likelihood consumes it.

    ln L splits into terms of x alone (summed once per distinct x), terms of T
    alone (once per distinct T) and the dropout branch of repeat buyers, the
    only part that needs one value per distinct (x, t_x, T) row.
    """

    customers: float
    repeat_purchases: float  # Σ customers · x
    distinct_frequency: FloatArray
    customers_per_frequency: FloatArray
    distinct_age: FloatArray
    customers_per_age: FloatArray
    purchases_per_age: FloatArray  # Σ customers · x per distinct T
    repeat_counts: FloatArray  # customers per distinct row with x > 0
    repeat_frequency: FloatArray
    repeat_recency: FloatArray
    repeat_age: FloatArray

    @classmethod
    def of(cls, x: FloatArray, t_x: FloatArray, age: FloatArray, counts: FloatArray) -> _BgNbdData:
        distinct_frequency, frequency_index = np.unique(x, return_inverse=True)
        distinct_age, age_index = np.unique(age, return_inverse=True)
        repeat = x > 0
        return cls(
            customers=float(counts.sum()),
            repeat_purchases=float(np.dot(counts, x)),
            distinct_frequency=distinct_frequency,
            customers_per_frequency=np.bincount(frequency_index, weights=counts),
            distinct_age=distinct_age,
            customers_per_age=np.bincount(age_index, weights=counts),
            purchases_per_age=np.bincount(age_index, weights=counts * x),
            repeat_counts=counts[repeat],
            repeat_frequency=x[repeat],
            repeat_recency=t_x[repeat],
            repeat_age=age[repeat],
        )

    def negative_mean_log_likelihood(self, log_params: FloatArray) -> tuple[float, FloatArray]:
        """−mean ln L of FHL eq. (6) and its gradient in (ln r, ln α, ln a, ln b).

        ln L = Σ ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x) − ln B(a, b)
               − (r + x) ln(α + T) + δ(x>0) softplus(D),
        D = ln a − ln(b + x − 1) + (r + x)(ln(α + T) − ln(α + t_x)); σ(D) is the
        posterior weight of "dropped out after the last purchase", 1 − P(alive).
        """
        r, alpha, a, b = np.exp(log_params)
        n = self.customers
        xs, by_x = self.distinct_frequency, self.customers_per_frequency
        ages, by_age, purchases_by_age = (
            self.distinct_age,
            self.customers_per_age,
            self.purchases_per_age,
        )
        x_rep, w_rep = self.repeat_frequency, self.repeat_counts
        log_alpha_age = np.log(alpha + ages)
        gap = np.log(alpha + self.repeat_age) - np.log(alpha + self.repeat_recency)
        lapse = np.log(a) - np.log(b + x_rep - 1) + (r + x_rep) * gap
        dead = w_rep * special.expit(lapse)  # customers × P(dropped out)
        log_likelihood = (
            np.dot(by_x, special.gammaln(r + xs) + special.betaln(a, b + xs))
            - n * (special.gammaln(r) + special.betaln(a, b) - r * np.log(alpha))
            - np.dot(r * by_age + purchases_by_age, log_alpha_age)
            + np.dot(w_rep, np.logaddexp(0.0, lapse))
        )
        digamma_ab_x = special.digamma(a + b + xs)
        d_r = (
            np.dot(by_x, special.digamma(r + xs))
            - n * (special.digamma(r) - np.log(alpha))
            - np.dot(by_age, log_alpha_age)
            + np.dot(dead, gap)
        )
        d_alpha = (
            n * r / alpha
            - np.dot(r * by_age + purchases_by_age, 1.0 / (alpha + ages))
            + np.dot(
                dead * (r + x_rep),
                1.0 / (alpha + self.repeat_age) - 1.0 / (alpha + self.repeat_recency),
            )
        )
        d_a = n * special.digamma(a + b) - np.dot(by_x, digamma_ab_x) + dead.sum() / a
        d_b = (
            np.dot(by_x, special.digamma(b + xs) - digamma_ab_x)
            + n * (special.digamma(a + b) - special.digamma(b))
            - np.dot(dead, 1.0 / (b + x_rep - 1))
        )
        gradient = np.array([r * d_r, alpha * d_alpha, a * d_a, b * d_b])
        return -float(log_likelihood) / n, -gradient / n


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


def _maximise(
    objective: Objective, start: FloatArray, names: tuple[str, ...]
) -> tuple[tuple[float, ...], float, bool, str]:
    """L-BFGS-B on log-parameters: (parameters, mean log-likelihood, converged, message).

    Raises `ModelFitError` unless parameters and likelihood are finite. Converged
    means a small gradient with every parameter strictly inside its bounds; the
    optimiser's own flag is not used alone because L-BFGS-B reports a failed line
    search when it is already at the optimum to machine precision.
    """
    low, high = np.log(_PARAMETER_RANGE)
    with np.errstate(all="ignore"):
        result = optimize.minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(low, high)] * len(start),
            options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-9},
        )
        value, gradient = objective(result.x)
    parameters = np.exp(result.x)
    if not (np.all(np.isfinite(parameters)) and np.isfinite(value)):
        raise ModelFitError(f"no finite maximum-likelihood estimate found ({result.message})")
    at_bound = [
        name
        for name, log_value in zip(names, result.x, strict=True)
        if log_value <= low + 1e-6 or log_value >= high - 1e-6
    ]
    steepest = float(np.max(np.abs(gradient)))
    converged = not at_bound and steepest <= _GRADIENT_TOLERANCE
    message = _fit_message(str(result.message), at_bound=at_bound, steepest=steepest)
    return tuple(float(value_) for value_ in parameters), -float(value), converged, message


# How L-BFGS-B (scipy 1.17) says why it stopped, in words a reader of model_fit understands.
# "ABNORMAL" is a line search that could not improve any further: at an optimum it
# means machine precision was reached, which the gradient check then confirms.
_OPTIMISER_STOPS = {
    "CONVERGENCE: NORM OF PROJECTED GRADIENT": "the gradient vanished",
    "CONVERGENCE: RELATIVE REDUCTION OF F": "the log-likelihood stopped improving",
    "ABNORMAL": "the line search found no further improvement at machine precision",
    "STOP: TOTAL NO. OF ITERATIONS": "the optimiser reached its iteration limit",
    "STOP: TOTAL NO. OF F,G EVALUATIONS": "the optimiser reached its evaluation limit",
}


def _fit_message(optimiser_message: str, *, at_bound: list[str], steepest: float) -> str:
    """model_fit.message: converged or not, why, and how the optimiser stopped — in words.

    Converged means a gradient of the mean log-likelihood (in log-parameters)
    of at most `_GRADIENT_TOLERANCE` with every parameter strictly inside its
    search bounds.
    """
    stop = next(
        (
            words
            for prefix, words in _OPTIMISER_STOPS.items()
            if optimiser_message.startswith(prefix)
        ),
        optimiser_message.strip() or "the optimiser gave no reason",
    )
    if not at_bound and steepest <= _GRADIENT_TOLERANCE:
        return f"converged: largest gradient {steepest:.2g} ≤ {_GRADIENT_TOLERANCE:g} ({stop})"
    problems = [f"{name} at its search bound" for name in at_bound]
    if steepest > _GRADIENT_TOLERANCE:
        problems.append(f"gradient {steepest:.2g} above {_GRADIENT_TOLERANCE:g}")
    return f"not converged: {'; '.join(problems)} ({stop})"


# --------------------------------------------------------------------------- predictions


def p_alive(fit: BgNbdFit, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike) -> FloatArray:
    """P(customer still alive at T | x, t_x, T) — SPEC §4/§6; FHL note 021 eq. (1).

    P(alive) = 1 / (1 + δ(x>0) · a/(b + x − 1) · ((α + T)/(α + t_x))^(r+x)),
    computed as a logistic of the log-odds so it never overflows. Customers
    without a repeat purchase have P(alive) = 1: in BG/NBD dropout can only
    happen right after a repeat purchase. NaN inputs give NaN.
    """
    x, t_x, age_ = _summary_arrays(frequency, recency, age, allow_missing=True)
    return _p_alive(fit, x, t_x, age_)


def _p_alive(fit: BgNbdFit, x: FloatArray, t_x: FloatArray, age: FloatArray) -> FloatArray:
    """P(alive) on validated arrays (see `p_alive`)."""
    repeat = x > 0
    with np.errstate(invalid="ignore"):
        log_odds_dead = (
            np.log(fit.a)
            - np.log(fit.b + np.where(repeat, x - 1, 0.0))
            + (fit.r + x) * (np.log(fit.alpha + age) - np.log(fit.alpha + t_x))
        )
    alive = np.where(repeat, special.expit(-log_odds_dead), 1.0)
    return np.where(np.isnan(x + t_x + age), np.nan, alive)


def expected_purchases(
    fit: BgNbdFit,
    horizon: float | ArrayLike,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
) -> FloatArray:
    """E[repeat purchases in (T, T + t] | x, t_x, T] — SPEC §6; FHL eq. (10).

    E = P(alive) · (a + b + x − 1)/(a − 1) · [1 − ((α+T)/(α+T+t))^(r+x)
        · ₂F₁(r + x, b + x; a + b + x − 1; t/(α+T+t))].
    `horizon` t is in the fit's time unit, a scalar or one value per customer.
    Evaluated once per distinct (x, T, t); see `_purchases_if_alive` for the
    numerically stable form. NaN inputs give NaN.
    """
    x, t_x, age_ = _summary_arrays(frequency, recency, age, allow_missing=True)
    horizon_ = np.broadcast_to(np.asarray(horizon, dtype=np.float64), x.shape)
    if np.any(horizon_ < 0):
        raise ValueError("horizon must be ≥ 0")
    result = np.full(x.shape, np.nan)
    known = ~np.isnan(x + t_x + age_ + horizon_)
    (x_u, age_u, horizon_u), inverse = _unique_rows((x[known], age_[known], horizon_[known]))
    if_alive = _purchases_if_alive(fit, x_u, age_u, horizon_u)[inverse]
    result[known] = _p_alive(fit, x[known], t_x[known], age_[known]) * if_alive
    return result


def _purchases_if_alive(
    fit: BgNbdFit, x: FloatArray, age: FloatArray, horizon: FloatArray
) -> FloatArray:
    """E[repeat purchases in (T, T + t] | alive at T, x, T] (FHL eq. 10 without P(alive)).

    Broadcasts its arguments. The hypergeometric term is evaluated in whichever
    of two equivalent forms stays bounded as z → 1:
    * a − 1 ≤ r + x: Euler's transformation, (1 − z)^(a−1) ₂F₁(a+b−1−r, a−1; c; z);
    * otherwise the paper's form, (1 − z)^(r+x) ₂F₁(r+x, b+x; c; z),
    with c = a + b + x − 1. The closed form cannot be evaluated where a = 1 or
    c = 0 (removable 0/0 singularities), nor where r − a is an integer: then
    c − A − B of either ₂F₁ is an integer, and scipy's ₂F₁ (1.17) returns inf or
    NaN near z = 1 for large c. At those points the mean of the values at
    a ± `_STEP_AROUND_A` is used.
    """
    r_minus_a = fit.r - fit.a
    unevaluable = (
        abs(fit.a - 1) < _STEP_AROUND_A
        or abs(r_minus_a - round(r_minus_a)) < _STEP_AROUND_A
        or bool(np.any(np.abs(fit.a + fit.b + x - 1) < _STEP_AROUND_A))
    )
    if unevaluable:
        below = _purchases_if_alive_closed_form(fit, fit.a - _STEP_AROUND_A, x, age, horizon)
        above = _purchases_if_alive_closed_form(fit, fit.a + _STEP_AROUND_A, x, age, horizon)
        return 0.5 * (below + above)
    return _purchases_if_alive_closed_form(fit, fit.a, x, age, horizon)


def _purchases_if_alive_closed_form(
    fit: BgNbdFit, a: float, x: FloatArray, age: FloatArray, horizon: FloatArray
) -> FloatArray:
    """FHL eq. (10) without P(alive), for the Beta parameter `a` (see `_purchases_if_alive`)."""
    r, alpha, b = fit.r, fit.alpha, fit.b
    c = a + b + x - 1
    z = horizon / (alpha + age + horizon)
    log_one_minus_z = np.log(alpha + age) - np.log(alpha + age + horizon)
    with np.errstate(all="ignore"):
        tail = np.where(
            a - 1 <= r + x,
            np.exp((a - 1) * log_one_minus_z) * special.hyp2f1(a + b - 1 - r, a - 1, c, z),
            np.exp((r + x) * log_one_minus_z) * special.hyp2f1(r + x, b + x, c, z),
        )
    return c / (a - 1) * (1.0 - tail)


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
    x = _as_float_vector(frequency, "frequency")
    spend = _as_float_vector(monetary, "monetary")
    if spend.shape != x.shape:
        raise ValueError(f"frequency and monetary differ in length: {x.size} vs {spend.size}")
    _check_frequency(x, allow_missing=True)
    own_total = np.where(x > 0, x * spend, 0.0)
    value = (fit_gg.v + own_total) * fit_gg.p / (fit_gg.p * x + fit_gg.q - 1)
    return np.where(np.isnan(x), np.nan, value)


def discounted_value(
    fit: BgNbdFit,
    fit_gg: GammaGammaFit,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
    monetary: ArrayLike,
    *,
    horizon_months: int,
    discount_rate: float,
    time_unit: str,
) -> FloatArray:
    """Probabilistic CLV, monthly discounted — SPEC §6; FHL eq. (10) × GG note 025 eq. (5).

    CLV = Σ_{m=1..H} (E[Y(m·M)] − E[Y((m−1)·M)]) · E[spend] / (1 + i)^(m/12),
    with Y(t) the conditional expected purchases of `expected_purchases`, M one
    month (365.25/12 days) in `time_unit`, i the annual discount rate and
    E[spend] from `expected_value_per_purchase`. Purchases of month m are
    discounted at its end. The BG/NBD part is evaluated once per distinct (x, T).
    """
    x, t_x, age_ = _summary_arrays(frequency, recency, age, allow_missing=True)
    monthly = _MonthlyPurchases.of(fit, x, t_x, age_, horizon_months, time_unit)
    value = expected_value_per_purchase(fit_gg, x, monetary)
    return monthly.weighted_sum(_monthly_discount_factors(horizon_months, discount_rate)) * value


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
    weighting over months (discounting, plain total) is one matrix product.
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
        (x_u, age_u), distinct_row = _unique_rows((x[known], age[known]))
        cumulative = _purchases_if_alive(fit, x_u[:, None], age_u[:, None], month_ends[None, :])
        return cls(
            alive=_p_alive(fit, x, t_x, age),
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
    expected_value_per_purchase (GG note 025 eq. 5) and clv_probabilistic (as
    `discounted_value`); the last two are null without a Gamma-Gamma fit.
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
    x, t_x, age_ = _summary_arrays(x, t_x, age_, allow_missing=True)
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
    x, t_x, age_ = _summary_arrays(frequency, recency, age, allow_missing=False)
    actual = _as_float_vector(holdout_purchases, "holdout_purchases")
    if actual.shape != x.shape:
        raise ValueError("holdout_purchases must have one value per row")
    counts = _customer_weights(weights, x.shape)
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


def _as_float_vector(values: ArrayLike, name: str) -> FloatArray:
    """`values` as a 1-D float64 array (a scalar becomes length 1)."""
    array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def _check_frequency(x: FloatArray, *, allow_missing: bool) -> None:
    """Repeat purchases are whole numbers ≥ 0; NaN (missing) is allowed only for predictions."""
    if not allow_missing and not np.all(np.isfinite(x)):
        raise ValueError("frequency must be finite")
    known = x[~np.isnan(x)]
    if np.any(known < 0) or np.any(known != np.floor(known)):
        raise ValueError("frequency must be whole numbers ≥ 0 (repeat purchase days)")


def _summary_arrays(
    frequency: ArrayLike, recency: ArrayLike, age: ArrayLike, *, allow_missing: bool
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validated (x, t_x, T): equal lengths, x whole ≥ 0, 0 ≤ t_x ≤ T.

    A fit refuses NaN/inf; predictions let NaN through (a missing summary gives
    a missing prediction, which Polars turns into null).
    """
    x = _as_float_vector(frequency, "frequency")
    t_x = _as_float_vector(recency, "recency")
    age_ = _as_float_vector(age, "age")
    if not x.shape == t_x.shape == age_.shape:
        raise ValueError(
            f"frequency, recency and age differ in length: {x.size}, {t_x.size}, {age_.size}"
        )
    _check_frequency(x, allow_missing=allow_missing)
    if not allow_missing and not (np.all(np.isfinite(t_x)) and np.all(np.isfinite(age_))):
        raise ValueError("recency and age must be finite")
    with np.errstate(invalid="ignore"):
        if np.any(t_x < 0) or np.any(t_x > age_):
            raise ValueError("recency must satisfy 0 ≤ recency ≤ age")
    return x, t_x, age_


def _customer_weights(weights: ArrayLike | None, shape: tuple[int, ...]) -> FloatArray:
    """Customers per row: ones by default, else whole numbers ≥ 0, one per row."""
    if weights is None:
        return np.ones(shape)
    counts = _as_float_vector(weights, "weights")
    if counts.shape != shape:
        raise ValueError(f"weights must have one value per row ({shape[0]}), got {counts.size}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0) or np.any(counts != np.floor(counts)):
        raise ValueError("weights must be whole numbers ≥ 0 (customers per row)")
    return counts


def _unique_rows(
    columns: tuple[FloatArray, ...],
) -> tuple[tuple[FloatArray, ...], NDArray[np.intp]]:
    """Distinct rows of equal-length columns, and each row's index among them.

    A Polars group-by (hashing, multi-threaded, order of first appearance so the
    result is deterministic) is several times faster than np.unique(axis=0),
    which sorts a structured view: 0.2 s instead of 1.5 s for a million rows.
    """
    names = [f"column_{i}" for i in range(len(columns))]
    groups = (
        pl.DataFrame(dict(zip(names, columns, strict=True)))
        .with_row_index("row")
        .group_by(names, maintain_order=True)
        .agg(pl.col("row"))
    )
    members = groups["row"]
    inverse = np.empty(len(columns[0]), dtype=np.intp)
    inverse[members.explode().to_numpy()] = np.repeat(
        np.arange(groups.height), members.list.len().to_numpy()
    )
    return tuple(groups[name].to_numpy() for name in names), inverse


def _collapse_rows(
    columns: tuple[FloatArray, ...], counts: FloatArray
) -> tuple[tuple[FloatArray, ...], FloatArray]:
    """Distinct rows, sorted, with the customers behind each summed (rows of count 0 dropped).

    Sorted, so the likelihood's sums run in one order whatever the order of the
    input rows: shuffled input gives bit-identical estimates (counts are whole
    numbers, so their sums are exact in any order).
    """
    names = [f"column_{i}" for i in range(len(columns))]
    keep = counts > 0
    groups = (
        pl.DataFrame({name: column[keep] for name, column in zip(names, columns, strict=True)})
        .with_columns(pl.Series("customers", counts[keep]))
        .group_by(names)
        .agg(pl.col("customers").sum())
        .sort(names)
    )
    return tuple(groups[name].to_numpy() for name in names), groups["customers"].to_numpy()
