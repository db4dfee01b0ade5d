"""BG/NBD: how often customers buy and when they stop (SPEC §4 P(alive), §6 probabilistic).

Fit by maximum likelihood on the repeat-purchase summary (FHL eq. 6), then per
customer P(alive) (FHL note 021) and the expected repeat purchases over a
horizon (FHL eq. 10). Time is rescaled internally (mean age) so one set of
parameter bounds fits any time unit; reported parameters and log-likelihoods
are in the caller's unit. A million customers fit and value in about two
seconds: terms of x alone or T alone are evaluated once per distinct value,
predictions once per distinct (x, T).

References: Fader, Hardie & Lee (2005a) "Counting Your Customers the Easy Way:
An Alternative to the Pareto/NBD Model", Marketing Science 24(2) [FHL];
Fader, Hardie & Lee (2008) "Computing P(alive) Using the BG/NBD Model" (note 021).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from customer_equity.transforms.maximum_likelihood import (
    PARAMETER_RANGE,
    FloatArray,
    ModelFitError,
    collapse_rows,
    customer_weights,
    maximise,
    summary_arrays,
    unique_rows,
)

# FHL eq. (10) is analytic in a, but its closed form cannot be evaluated at a few
# points (see `purchases_if_alive`); there the mean of the values at a ± this step
# is used, which is exact to O(step²), far below the parameters' sampling error.
_STEP_AROUND_A = 1e-6


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
    x, t_x, age_ = summary_arrays(frequency, recency, age, allow_missing=False)
    counts = customer_weights(weights, x.shape)
    customers = int(counts.sum())
    if customers < min_customers:
        raise ModelFitError(f"BG/NBD needs at least {min_customers} customers, got {customers}")
    if not np.any((x > 0) & (counts > 0)):
        raise ModelFitError(
            f"BG/NBD cannot be fitted: none of the {customers} customers made a repeat purchase"
        )
    t_x = np.where(x > 0, t_x, 0.0)  # t_x does not enter the likelihood when x = 0
    (x, t_x, age_), counts = collapse_rows((x, t_x, age_), counts)
    time_scale = float(np.average(age_, weights=counts))
    if time_scale <= 0:
        raise ModelFitError("BG/NBD cannot be fitted: every customer has age 0")
    data = _BgNbdData.of(x, t_x / time_scale, age_ / time_scale, counts)
    purchase_rate = float(np.dot(counts, x) / np.dot(counts, age_ / time_scale))
    start = np.log(np.clip([1.0, 1.0 / purchase_rate, 1.0, 1.0], *PARAMETER_RANGE))
    (r, alpha, a, b), mean_log_likelihood, converged, message = maximise(
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


def p_alive(fit: BgNbdFit, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike) -> FloatArray:
    """P(customer still alive at T | x, t_x, T) — SPEC §4/§6; FHL note 021 eq. (1).

    P(alive) = 1 / (1 + δ(x>0) · a/(b + x − 1) · ((α + T)/(α + t_x))^(r+x)),
    computed as a logistic of the log-odds so it never overflows. Customers
    without a repeat purchase have P(alive) = 1: in BG/NBD dropout can only
    happen right after a repeat purchase. NaN inputs give NaN.
    """
    x, t_x, age_ = summary_arrays(frequency, recency, age, allow_missing=True)
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
    Evaluated once per distinct (x, T, t); see `purchases_if_alive` for the
    numerically stable form. NaN inputs give NaN.
    """
    x, t_x, age_ = summary_arrays(frequency, recency, age, allow_missing=True)
    horizon_ = np.broadcast_to(np.asarray(horizon, dtype=np.float64), x.shape)
    if np.any(horizon_ < 0):
        raise ValueError("horizon must be ≥ 0")
    result = np.full(x.shape, np.nan)
    known = ~np.isnan(x + t_x + age_ + horizon_)
    (x_u, age_u, horizon_u), inverse = unique_rows((x[known], age_[known], horizon_[known]))
    if_alive = purchases_if_alive(fit, x_u, age_u, horizon_u)[inverse]
    result[known] = _p_alive(fit, x[known], t_x[known], age_[known]) * if_alive
    return result


def purchases_if_alive(
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
    """FHL eq. (10) without P(alive), for the Beta parameter `a` (see `purchases_if_alive`)."""
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
