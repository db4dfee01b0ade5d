"""Deterministic synthetic extracts: a customer base with a known ground truth.

The pipeline estimates purchase rates, dropout, spend and purchase share from
extracts; to test, demo and benchmark it we need extracts whose true process is
known. This module simulates one and writes it into an inbox exactly as a
nightly feed would (SPEC §2): canonical column names, one history file plus
one file per day, a late correction and a duplicated row, and a sidecar
`generator_params.json` with every parameter a fit is supposed to recover.

The purchase process is BG/NBD (Fader, Hardie & Lee 2005), time unit days:
each buyer has a purchase rate λ ~ Gamma(r, rate alpha) and a dropout probability
p ~ Beta(a, b); the first purchase is at acquisition, repeat purchases follow
a Poisson process with rate λ, and after every *repeat* purchase the buyer
drops out with probability p (the BG/NBD convention: nobody drops out right
after the first purchase). Spend is Gamma-Gamma: nu ~ Gamma(q, rate v) per
buyer, net revenue of each purchase ~ Gamma(p, rate nu), times a spend trend
that makes some buyers decline or grow in the last year. Everything is drawn
with vectorised numpy from named child seeds of one `SeedSequence`, so the
files are byte-identical for the same arguments.

Default parameters give about 7.1 transaction rows per buyer over 3 years, so
`customers=1_410_000` yields about 10 million transactions
(`customers_for_transactions` computes this from the parameters).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy.special import hyp2f1

from customer_equity.schemas.inputs import COST_TYPES
from customer_equity.settings import ASSET_CLASSES, EXTRACT_KINDS, Holdings

FileFormat = Literal["csv", "parquet"]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

EPOCH = date(1970, 1, 1)
SIDECAR_NAME = "generator_params.json"
CUSTOMER_ID_DIGITS = 7
TRANSACTION_ID_DIGITS = 9

TRANSACTION_COLUMNS = (
    "transaction_id",
    "customer_id",
    "transaction_date",
    "amount",
    "cost",
    "quantity",
    "category",
    "channel",
    "discount",
    "currency",
)
CUSTOMER_COLUMNS = (
    "customer_id",
    "created_date",
    "acquisition_channel",
    "segment",
    "region",
    "referred_by",
    "status",
    "closed_date",
    "risk_profile",
    "name",
    "email",
    "phone",
)
WALLET_COLUMNS = ("customer_id", "period_start", "period_end", "total_purchases")
COST_COLUMNS = ("customer_id", "cost_date", "cost_type", "amount")


@dataclass(frozen=True)
class PurchaseProcess:
    """BG/NBD parameters; λ ~ Gamma(r, rate alpha) in purchases per day, p ~ Beta(a, b)."""

    r: float = 0.75
    alpha: float = 20.0
    a: float = 0.8
    b: float = 3.0
    time_unit: str = "days"


@dataclass(frozen=True)
class SpendProcess:
    """Gamma-Gamma parameters of net revenue per purchase: nu ~ Gamma(q, rate v), z ~ Gamma(p, nu).

    The mean spend of a buyer is p / nu; over buyers it is p·v / (q - 1) = 300 USD.
    """

    p: float = 6.0
    q: float = 4.0
    v: float = 150.0
    monetary: str = "amount (net revenue) of one purchase before the spend trend"


PURCHASE_PROCESS = PurchaseProcess()
SPEND_PROCESS = SpendProcess()

# Category -> true contribution margin rate; cost ≈ amount · (1 - margin) · noise.
CATEGORY_MARGINS: dict[str, float] = {
    "office_supplies": 0.32,
    "furniture": 0.28,
    "electronics": 0.15,
    "software": 0.55,
    "services": 0.45,
}
CORE_CATEGORY_WEIGHTS = (0.35, 0.15, 0.25, 0.10, 0.15)
CROSS_SELL_BETA = (1.2, 6.0)  # per-buyer share of purchases outside the core category
COST_NOISE_SIGMA = 0.08

CHANNELS = ("online", "branch", "phone")
PREFERRED_CHANNEL_SHARE = 0.75
SEGMENTS = ("retail", "online", "wholesale", "corporate")
SEGMENT_WEIGHTS = (0.50, 0.25, 0.15, 0.10)
SEGMENT_PREFERRED_CHANNEL = (1, 0, 2, 2)  # index into CHANNELS, per segment
REGIONS = ("north", "south", "east", "west", "central")
RISK_PROFILES = ("conservative", "steady", "balanced", "aggressive")
RISK_PROFILE_WEIGHTS = (0.25, 0.35, 0.25, 0.15)
ACQUISITION_CHANNELS = ("web", "store", "sales_rep", "partner", "referral")
ACQUISITION_CHANNEL_WEIGHTS = (0.35, 0.30, 0.20, 0.15)  # for the non-referred
ACQUISITION_COST_BASE = (60.0, 90.0, 250.0, 150.0, 40.0)  # per acquisition channel, USD

PROSPECT_SHARE = 0.05
REFERRED_SHARE = 0.10
CLOSED_SHARE = 0.03
MAX_CREATED_BEFORE_FIRST_PURCHASE_DAYS = 60

TREND_RAMP_DAYS = 360  # the spend trend ramps linearly over the last 360 days
TREND_KINDS = ("stable", "declining", "growing")
TREND_SHARES = (0.70, 0.15, 0.15)
TREND_FINAL_MULTIPLIERS = (1.0, 0.3, 2.0)

DISCOUNTED_SHARE = 0.30
DISCOUNT_RATE_RANGE = (0.02, 0.20)
SPLIT_SHARE = 0.01  # purchases delivered as two orders on the same day
RETURN_SHARE = 0.025
RETURN_MAX_DAYS = 30
FULL_RETURN_SHARE = 0.6
CORRECTION_FACTOR = 0.9  # the corrected price of the re-delivered transaction
RESENT_ROWS = 2  # the last daily file re-sends one corrected and one duplicated earlier row

WALLET_COVERAGE = 0.70
WALLET_SHARE_BETA = (1.2, 1.5)  # K = 0.05 + 0.95 · Beta(1.2, 1.5), so K ∈ (0.05, 1)
WALLET_NOISE_SIGMA = 0.10

DEVELOPMENT_DAYS = 180
DEVELOPMENT_EVENTS_MEAN = 1.2
SERVICE_EVENTS_PER_YEAR = 0.8
RETENTION_EVENTS_PER_YEAR = 0.4
SERVICE_SPAN_AFTER_LAST_PURCHASE_DAYS = 60
REBATE_RATE = 0.02
REBATE_MIN_REVENUE = 1000.0
COST_MEDIANS = {"development": 80.0, "retention": 50.0, "service": 25.0}

# The wealth view (SPEC §10): a bank-like share of the open buyers hold products with us,
# reported as month-end balances. Mixes follow the declared risk profile loosely,
# so some positions sit above what the profile tolerates (mis-selling happens).
HOLDER_SHARE = 0.20
HOLDER_ACTIVE_DAYS = 300  # holders bought within this many days of the end date
HOLDINGS_SNAPSHOTS = 7  # month-ends up to the end date: D and the one before D − 180
AUM_MEDIAN = 120_000.0
AUM_SIGMA = 1.5  # lognormal: ≈ 17 % affluent (≥ 500,000), ≈ 0.6 % private banking (≥ 6M)
PRODUCTS_EXTRA_MEAN = 1.6  # products per holder = 1 + Poisson, at most 8
MAX_PRODUCTS = 8
CLASS_CODES = ("DEP", "BND", "EQU", "FND", "INS", "REI", "OTH")
CATALOG_SIZE = 20  # products per asset class
# Asset-class weights per risk profile (order of RISK_PROFILES).
PROFILE_CLASS_WEIGHTS = (
    (0.40, 0.30, 0.02, 0.12, 0.12, 0.02, 0.02),
    (0.25, 0.30, 0.08, 0.22, 0.10, 0.03, 0.02),
    (0.15, 0.20, 0.20, 0.30, 0.08, 0.05, 0.02),
    (0.10, 0.10, 0.40, 0.30, 0.03, 0.05, 0.02),
)
MONTHLY_VOLATILITY = (0.0, 0.005, 0.05, 0.025, 0.0, 0.01, 0.02)
MONTHLY_DRIFT = (0.001, 0.003, 0.006, 0.004, 0.003, 0.002, 0.0)
GOALS = ("retirement", "education", "housing", "wealth_growth", "emergency")
GOAL_WEIGHTS = (0.30, 0.12, 0.13, 0.25, 0.10)  # the rest: no goal given
LATE_OPENED_SHARE = 0.25  # products bought after the first snapshot
STALE_SHARE = 0.06  # products whose feed stops two or more months before the end
SOLD_SHARE = 0.04  # products sold: one zero balance, then no more rows
WITHDRAWING_SHARE = 0.12  # holders who take money out over the last 180 days
WITHDRAWAL_DAYS = 180
WITHDRAWN_FRACTION = 0.6
EXPLICIT_RISK_SHARE = 0.6  # rows that carry the product's own R-level
TIME_DEPOSIT_FROM = 15  # cash products from this catalog number are time deposits (medium)
HOLDINGS_COLUMNS = (
    "customer_id",
    "balance_date",
    "product_id",
    "asset_class",
    "balance",
    "liquidity",
    "risk_level",
    "goal",
)

STREAM_NAMES = (
    "buyers",
    "purchases",
    "attributes",
    "splits",
    "returns",
    "customers",
    "wallets",
    "costs",
    "feed",
    "holdings",
)


@dataclass(frozen=True)
class GenerationReport:
    """What one `generate_extracts` call wrote, so callers can log and assert on it."""

    counts: Mapping[str, int]  # rows written per extract kind (transactions incl. 2 re-sent)
    files: tuple[Path, ...]  # every file written, sidecar last
    parameters: Mapping[str, object]  # the call's arguments, JSON-friendly
    elapsed_seconds: float


@dataclass(frozen=True)
class _Buyers:
    """Per-buyer draws; index i of every array is buyer i (not yet a customer number)."""

    acquired_at: FloatArray  # continuous day number (days since 1970-01-01) of the first purchase
    purchase_rate: FloatArray  # λ, purchases per day
    spend_rate: FloatArray  # nu of the Gamma-Gamma model
    trend_kind: IntArray  # index into TREND_KINDS
    core_category: IntArray
    cross_sell_share: FloatArray
    segment: IntArray


@dataclass(frozen=True)
class _Transactions:
    """One row per transaction, in no particular order; buyer is an internal buyer index."""

    buyer: IntArray
    day: IntArray
    amount: FloatArray
    cost: FloatArray
    quantity: IntArray
    category: IntArray
    channel: IntArray
    discount: FloatArray

    def take(self, rows: IntArray) -> _Transactions:
        """Rows `rows` of every column, to reorder or subset all columns together."""
        return _Transactions(**{name: column[rows] for name, column in vars(self).items()})

    def concat(self, other: _Transactions) -> _Transactions:
        """These rows followed by `other`'s, to append derived rows (splits, returns)."""
        return _Transactions(
            **{
                name: np.concatenate([column, getattr(other, name)])
                for name, column in vars(self).items()
            }
        )


def expected_transactions_per_buyer(years: float = 3.0) -> float:
    """Expected transaction rows per buyer when acquisitions are uniform over `years`.

    Uses the BG/NBD mean E[X(t)] of repeat purchases (FHL 2005, eq. 9) averaged
    over the uniform observation length, plus the first purchase, same-day
    splits and returns. Lets a caller size a run by transactions, not buyers.
    """
    nodes, weights = np.polynomial.legendre.leggauss(64)
    span = years * 365.25
    observation_days = (nodes + 1.0) * span / 2.0
    r, alpha = PURCHASE_PROCESS.r, PURCHASE_PROCESS.alpha
    a, b = PURCHASE_PROCESS.a, PURCHASE_PROCESS.b
    z = observation_days / (alpha + observation_days)
    repeat_purchases = (
        (a + b - 1.0)
        / (a - 1.0)
        * (1.0 - (alpha / (alpha + observation_days)) ** r * hyp2f1(r, b, a + b - 1.0, z))
    )
    purchases = 1.0 + float(np.sum(weights * repeat_purchases) / 2.0)
    return purchases * (1.0 + SPLIT_SHARE + RETURN_SHARE)


def customers_for_transactions(transactions: int, years: float = 3.0) -> int:
    """Number of buying customers that yields about `transactions` rows (prospects are extra)."""
    return max(1, round(transactions / expected_transactions_per_buyer(years)))


def generate_extracts(
    inbox: Path,
    *,
    customers: int = 3000,
    seed: int = 42,
    end_date: date = date(2025, 12, 31),
    years: float = 3.0,
    daily_files: int = 7,
    file_format: FileFormat = "csv",
) -> GenerationReport:
    """Write a synthetic, deterministic set of extracts for `customers` buyers into `inbox`.

    `customers` counts buying customers; about 5 % more prospects (customers
    without any transaction) are added. Refuses an inbox whose kind folders
    already hold files: mixing runs would silently corrupt the ground truth.
    """
    started = time.perf_counter()
    if customers < 10:
        raise ValueError("customers must be at least 10")
    if daily_files < 1:
        raise ValueError(
            "daily_files must be at least 1: the last daily file carries the correction"
        )
    if years <= 0:
        raise ValueError("years must be positive")
    if file_format not in ("csv", "parquet"):
        raise ValueError(f"file_format must be 'csv' or 'parquet', not {file_format!r}")
    inbox = Path(inbox)
    kind_dirs = {kind: inbox / kind for kind in EXTRACT_KINDS}
    for folder in kind_dirs.values():
        if folder.exists() and any(folder.iterdir()):
            raise FileExistsError(f"{folder} is not empty; generate into a fresh inbox")
    for folder in kind_dirs.values():
        folder.mkdir(parents=True, exist_ok=True)

    streams = dict(
        zip(
            STREAM_NAMES,
            (
                np.random.default_rng(child)
                for child in np.random.SeedSequence(seed).spawn(len(STREAM_NAMES))
            ),
            strict=True,
        )
    )
    end_day = (end_date - EPOCH).days
    window_start = end_day + 1.0 - years * 365.25
    prospects = max(1, round(customers * PROSPECT_SHARE))

    buyers = _draw_buyers(streams["buyers"], customers, window_start, end_day)
    transactions = _simulate_transactions(streams, buyers, end_day)

    first_day = np.floor(buyers.acquired_at).astype(np.int64)
    last_day = np.full(customers, np.iinfo(np.int64).min)  # last purchase or return
    np.maximum.at(last_day, transactions.buyer, transactions.day)
    people = _draw_customers(
        streams["customers"], buyers, first_day, last_day, prospects, window_start, end_day
    )
    customer_number = people["customer_number"]

    earliest_created_day = int(np.floor(window_start)) - MAX_CREATED_BEFORE_FIRST_PURCHASE_DAYS
    first_year = int(_year_of(np.asarray([earliest_created_day]))[0])
    end_year = end_date.year
    revenue_by_year = _revenue_by_buyer_year(transactions, customers, first_year, end_year)

    # Each table is written as soon as it is built, so only one is in memory at a time.
    customer_path = kind_dirs["customers"] / "customers.csv"
    wallet_path = kind_dirs["wallets"] / "wallets.csv"
    cost_path = kind_dirs["costs"] / "costs.csv"
    table_rows = {
        "customers": _write_csv(_customers_frame(people), customer_path),
        "wallets": _write_csv(
            _wallets_frame(
                streams["wallets"], buyers, people, revenue_by_year, first_year, end_year
            ),
            wallet_path,
        ),
        "costs": _write_csv(
            _costs_frame(
                streams["costs"], people, first_day, last_day, revenue_by_year, first_year, end_day
            ),
            cost_path,
        ),
    }
    transactions = transactions.take(_feed_order(transactions, customer_number))
    files, feed_facts = _write_transaction_feed(
        streams["feed"],
        _transactions_frame(transactions, customer_number),
        kind_dirs["transactions"],
        end_date,
        daily_files,
        "." + file_format,
    )
    holdings_files, table_rows["holdings"] = _write_holdings(
        _holdings_frame(streams["holdings"], people, last_day, end_day), kind_dirs["holdings"]
    )
    counts = {"transactions": transactions.day.size + RESENT_ROWS, **table_rows}
    files += [customer_path, wallet_path, cost_path, *holdings_files]

    parameters: dict[str, object] = {
        "inbox": str(inbox),
        "customers": customers,
        "seed": seed,
        "end_date": end_date.isoformat(),
        "years": years,
        "daily_files": daily_files,
        "file_format": file_format,
    }
    sidecar = inbox / SIDECAR_NAME
    sidecar.write_text(
        json.dumps(
            _sidecar(
                parameters, customers, prospects, window_start, counts, feed_facts, files, inbox
            ),
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    files.append(sidecar)
    return GenerationReport(
        counts=counts,
        files=tuple(files),
        parameters=parameters,
        elapsed_seconds=time.perf_counter() - started,
    )


def _draw_buyers(
    rng: np.random.Generator, buyers: int, window_start: float, end_day: int
) -> _Buyers:
    """Per-buyer latent traits: acquisition time, λ, nu, spend trend, core category, segment."""
    return _Buyers(
        acquired_at=rng.uniform(window_start, end_day + 1.0, buyers),
        purchase_rate=rng.gamma(PURCHASE_PROCESS.r, 1.0 / PURCHASE_PROCESS.alpha, buyers),
        spend_rate=rng.gamma(SPEND_PROCESS.q, 1.0 / SPEND_PROCESS.v, buyers),
        trend_kind=rng.choice(len(TREND_KINDS), size=buyers, p=TREND_SHARES),
        core_category=rng.choice(len(CATEGORY_MARGINS), size=buyers, p=CORE_CATEGORY_WEIGHTS),
        cross_sell_share=rng.beta(*CROSS_SELL_BETA, buyers),
        segment=rng.choice(len(SEGMENTS), size=buyers, p=SEGMENT_WEIGHTS),
    )


def _simulate_transactions(
    streams: Mapping[str, np.random.Generator], buyers: _Buyers, end_day: int
) -> _Transactions:
    """Purchases, their same-day splits and returns; intermediate arrays die on return."""
    purchases = _simulate_purchases(streams["purchases"], streams["attributes"], buyers, end_day)
    purchases = _add_same_day_splits(streams["splits"], purchases)
    return purchases.concat(_draw_returns(streams["returns"], purchases, end_day))


def _simulate_purchases(
    rng: np.random.Generator,
    attribute_rng: np.random.Generator,
    buyers: _Buyers,
    end_day: int,
) -> _Transactions:
    """All purchases of all buyers from the BG/NBD process, truncated at the end of `end_day`.

    Repeat purchases X = min(J, N): N ~ Poisson(λT) arrivals in the observation
    length T, J ~ Geometric(p) the repeat purchase after which the buyer drops
    out. Given N = n, the first X arrival times are the X smallest of n uniform
    points on [0, T], drawn without materialising all n: with S_k the partial
    sums of exponentials, the k-th smallest is T·S_k / (S_X + Gamma(n - X + 1)).
    """
    count = buyers.acquired_at.size
    observation_days = end_day + 1.0 - buyers.acquired_at
    dropout = rng.beta(PURCHASE_PROCESS.a, PURCHASE_PROCESS.b, count)
    arrivals = rng.poisson(buyers.purchase_rate * observation_days)
    last_repeat = rng.geometric(dropout)
    repeats = np.minimum(arrivals, last_repeat)

    rows_per_buyer = repeats + 1
    buyer = np.repeat(np.arange(count), rows_per_buyer)
    first_row = np.cumsum(rows_per_buyer) - rows_per_buyer
    gaps = rng.standard_exponential(buyer.size)
    gaps[first_row] = 0.0
    partial_sums = np.cumsum(gaps)
    partial_sums -= np.repeat(partial_sums[first_row], rows_per_buyer)
    last_row = first_row + repeats
    normaliser = partial_sums[last_row] + rng.gamma(arrivals - repeats + 1.0)
    at = buyers.acquired_at[buyer] + observation_days[buyer] * partial_sums / normaliser[buyer]
    day = np.minimum(np.floor(at).astype(np.int64), end_day)

    ramp = np.clip((at - (end_day + 1.0 - TREND_RAMP_DAYS)) / TREND_RAMP_DAYS, 0.0, 1.0)
    final_multiplier = np.asarray(TREND_FINAL_MULTIPLIERS)[buyers.trend_kind][buyer]
    spend = rng.gamma(SPEND_PROCESS.p, size=buyer.size) / buyers.spend_rate[buyer]
    amount = np.maximum(_cents(spend * (1.0 + (final_multiplier - 1.0) * ramp)), 0.01)

    is_cross_sell = attribute_rng.random(buyer.size) < buyers.cross_sell_share[buyer]
    is_cross_sell[first_row] = False  # the first purchase defines the core business
    other_category = (
        buyers.core_category[buyer] + attribute_rng.integers(1, len(CATEGORY_MARGINS), buyer.size)
    ) % len(CATEGORY_MARGINS)
    category = np.where(is_cross_sell, other_category, buyers.core_category[buyer])
    margin = np.asarray(tuple(CATEGORY_MARGINS.values()))[category]
    noise = np.exp(attribute_rng.normal(0.0, COST_NOISE_SIGMA, buyer.size))
    cost = np.maximum(_cents(amount * (1.0 - margin) * noise), 0.01)

    preferred = np.asarray(SEGMENT_PREFERRED_CHANNEL)[buyers.segment][buyer]
    channel = np.where(
        attribute_rng.random(buyer.size) < PREFERRED_CHANNEL_SHARE,
        preferred,
        attribute_rng.integers(0, len(CHANNELS), buyer.size),
    )
    discount_rate = attribute_rng.uniform(*DISCOUNT_RATE_RANGE, buyer.size)
    discounted = attribute_rng.random(buyer.size) < DISCOUNTED_SHARE
    discount = np.where(discounted, _cents(amount * discount_rate / (1.0 - discount_rate)), 0.0)
    quantity = 1 + attribute_rng.poisson(amount / 120.0)
    return _Transactions(
        buyer=buyer,
        day=day,
        amount=amount,
        cost=cost,
        quantity=quantity,
        category=category,
        channel=channel,
        discount=discount,
    )


def _add_same_day_splits(rng: np.random.Generator, purchases: _Transactions) -> _Transactions:
    """Deliver ~1 % of purchases as two orders on the same day.

    Splitting (instead of adding an order) keeps the day's revenue one
    Gamma-Gamma draw, so a fit on purchase days still recovers p, q, v.
    """
    splittable = (purchases.amount >= 2.0) & (purchases.cost >= 0.02)
    chosen = np.flatnonzero(splittable & (rng.random(purchases.amount.size) < SPLIT_SHARE))
    fraction = rng.uniform(0.25, 0.75, chosen.size)

    def parts(total: FloatArray) -> tuple[FloatArray, FloatArray]:
        first = np.clip(_cents(total * fraction), 0.01, total - 0.01)
        return first, _cents(total - first)

    first_amount, second_amount = parts(purchases.amount[chosen])
    first_cost, second_cost = parts(purchases.cost[chosen])
    discount = purchases.discount[chosen]
    first_discount = _cents(discount * fraction)
    first_quantity = np.maximum(1, np.rint(purchases.quantity[chosen] * fraction).astype(np.int64))

    second = purchases.take(chosen)
    second_orders = _Transactions(
        buyer=second.buyer,
        day=second.day,
        amount=second_amount,
        cost=second_cost,
        quantity=np.maximum(1, second.quantity - first_quantity),
        category=second.category,
        channel=second.channel,
        discount=_cents(discount - first_discount),
    )
    split = purchases.concat(second_orders)  # a copy, so the caller's arrays stay intact
    split.amount[chosen] = first_amount
    split.cost[chosen] = first_cost
    split.discount[chosen] = first_discount
    split.quantity[chosen] = first_quantity
    return split


def _draw_returns(
    rng: np.random.Generator, purchases: _Transactions, end_day: int
) -> _Transactions:
    """Returns of ~2.5 % of purchases: same buyer, category and channel, 1-30 days later."""
    returnable = purchases.day < end_day
    chosen = np.flatnonzero(returnable & (rng.random(purchases.day.size) < RETURN_SHARE))
    original = purchases.take(chosen)
    fraction = np.where(
        rng.random(chosen.size) < FULL_RETURN_SHARE, 1.0, rng.uniform(0.2, 0.9, chosen.size)
    )
    delay = rng.integers(1, RETURN_MAX_DAYS + 1, chosen.size)
    return _Transactions(
        buyer=original.buyer,
        day=np.minimum(original.day + delay, end_day),
        amount=-np.maximum(_cents(original.amount * fraction), 0.01),
        cost=-np.maximum(_cents(original.cost * fraction), 0.01),
        quantity=np.maximum(1, np.rint(original.quantity * fraction).astype(np.int64)),
        category=original.category,
        channel=original.channel,
        discount=np.zeros(chosen.size),
    )


def _draw_customers(
    rng: np.random.Generator,
    buyers: _Buyers,
    first_day: IntArray,
    last_day: IntArray,
    prospects: int,
    window_start: float,
    end_day: int,
) -> dict[str, NDArray[np.generic]]:
    """Customer master data for buyers (index < buyers) then prospects, as columns.

    Customer numbers follow created_date, as a CRM hands them out, so
    `referred_by` can always point to a lower number, i.e. an earlier customer.
    """
    buyer_count = first_day.size
    total = buyer_count + prospects
    delay = np.where(
        rng.random(buyer_count) < 0.5,
        0,
        rng.integers(1, MAX_CREATED_BEFORE_FIRST_PURCHASE_DAYS + 1, buyer_count),
    )
    prospect_created = rng.integers(int(np.ceil(window_start)), end_day + 1, prospects)
    created_day = np.concatenate([first_day - delay, prospect_created])
    creation_order = np.lexsort((rng.random(total), created_day))
    customer_number = np.empty(total, dtype=np.int64)
    customer_number[creation_order] = np.arange(1, total + 1)

    referred = (rng.random(total) < REFERRED_SHARE) & (customer_number > 1)
    referrer_number = np.where(
        referred, 1 + np.floor(rng.random(total) * (customer_number - 1)).astype(np.int64), 0
    )
    acquisition_channel = np.where(
        referred,
        ACQUISITION_CHANNELS.index("referral"),
        rng.choice(len(ACQUISITION_CHANNEL_WEIGHTS), size=total, p=ACQUISITION_CHANNEL_WEIGHTS),
    )

    segment = np.concatenate(
        [buyers.segment, rng.choice(len(SEGMENTS), size=prospects, p=SEGMENT_WEIGHTS)]
    )
    closable = np.concatenate([last_day <= end_day - 30, np.zeros(prospects, dtype=bool)])
    close_probability = min(1.0, CLOSED_SHARE * buyer_count / max(1, int(closable.sum())))
    closed = closable & (rng.random(total) < close_probability)
    buyer_last_day = np.concatenate([last_day, np.full(prospects, end_day)])
    closed_day = (
        buyer_last_day
        + 1
        + np.floor(rng.random(total) * (end_day - buyer_last_day)).astype(np.int64)
    )
    return {
        "customer_number": customer_number,
        "created_day": created_day,
        "acquisition_channel": acquisition_channel,
        "segment": segment,
        "region": rng.integers(0, len(REGIONS), total),
        "referrer_number": referrer_number,
        "closed": closed,
        "closed_day": closed_day,
        "risk_profile": rng.choice(len(RISK_PROFILES), size=total, p=RISK_PROFILE_WEIGHTS),
    }


def _revenue_by_buyer_year(
    transactions: _Transactions, buyers: int, first_year: int, end_year: int
) -> FloatArray:
    """Net revenue per (buyer, calendar year), shape (buyers, years from first_year)."""
    year_count = end_year - first_year + 1
    year_index = _year_of(transactions.day) - first_year
    return np.bincount(
        transactions.buyer * year_count + year_index,
        weights=transactions.amount,
        minlength=buyers * year_count,
    ).reshape(buyers, year_count)


def _customers_frame(people: Mapping[str, NDArray[np.generic]]) -> pl.DataFrame:
    number = pl.col("customer_number")
    frame = pl.DataFrame(
        {
            "customer_number": people["customer_number"],
            "created_date": _dates(people["created_day"]),
            "acquisition_channel": _labels(ACQUISITION_CHANNELS, people["acquisition_channel"]),
            "segment": _labels(SEGMENTS, people["segment"]),
            "region": _labels(REGIONS, people["region"]),
            "referrer_number": people["referrer_number"],
            "closed": people["closed"],
            "closed_date": _dates(people["closed_day"]),
            "risk_profile": _labels(RISK_PROFILES, people["risk_profile"]),
        }
    )
    return frame.sort("customer_number").select(
        _customer_id(number).alias("customer_id"),
        "created_date",
        "acquisition_channel",
        "segment",
        "region",
        pl.when(pl.col("referrer_number") > 0)
        .then(_customer_id(pl.col("referrer_number")))
        .alias("referred_by"),
        pl.when(pl.col("closed"))
        .then(pl.lit("closed"))
        .otherwise(pl.lit("active"))
        .alias("status"),
        pl.when(pl.col("closed")).then(pl.col("closed_date")).alias("closed_date"),
        "risk_profile",
        pl.format("Customer {}", number).alias("name"),
        pl.format("c{}@example.com", number).alias("email"),
        pl.format("+1-555-{}", number.cast(pl.String).str.zfill(CUSTOMER_ID_DIGITS)).alias("phone"),
    )


def _wallets_frame(
    rng: np.random.Generator,
    buyers: _Buyers,
    people: Mapping[str, NDArray[np.generic]],
    revenue_by_year: FloatArray,
    first_year: int,
    end_year: int,
) -> pl.DataFrame:
    """Yearly total purchases from all suppliers for ~70 % of buyers and all prospects.

    The wallet is the buyer's expected yearly spend at its own rate divided by
    a share K; it stays put when our revenue declines (the customer moves
    business elsewhere) and is raised to our revenue / K when we sold more, so
    total_purchases ≥ our revenue in every period.
    """
    buyer_count = revenue_by_year.shape[0]
    total = people["customer_number"].size
    prospects = total - buyer_count
    share = 0.05 + 0.95 * rng.beta(*WALLET_SHARE_BETA, total)
    prospect_rate = rng.gamma(PURCHASE_PROCESS.r, 1.0 / PURCHASE_PROCESS.alpha, prospects)
    prospect_spend_rate = rng.gamma(SPEND_PROCESS.q, 1.0 / SPEND_PROCESS.v, prospects)
    yearly_spend = (
        365.25
        * np.concatenate([buyers.purchase_rate, prospect_rate])
        * SPEND_PROCESS.p
        / np.concatenate([buyers.spend_rate, prospect_spend_rate])
    )
    covered = np.concatenate(
        [rng.random(buyer_count) < WALLET_COVERAGE, np.ones(prospects, dtype=bool)]
    )
    person = np.flatnonzero(covered)
    created_year = _year_of(people["created_day"][person])
    periods = end_year - created_year + 1
    row_person = np.repeat(person, periods)
    year = np.repeat(created_year, periods) + (
        np.arange(row_person.size) - np.repeat(np.cumsum(periods) - periods, periods)
    )
    our_revenue = np.zeros(row_person.size)
    is_buyer = row_person < buyer_count
    our_revenue[is_buyer] = revenue_by_year[row_person[is_buyer], year[is_buyer] - first_year]
    noise = np.exp(rng.normal(0.0, WALLET_NOISE_SIGMA, row_person.size))
    # Rounding up keeps total ≥ our revenue: K < 1, so revenue / K ≥ revenue already.
    wallet = (
        np.ceil(
            np.maximum(yearly_spend[row_person] * noise, our_revenue / share[row_person]) * 100.0
        )
        / 100.0
    )
    frame = pl.DataFrame(
        {
            "customer_number": people["customer_number"][row_person],
            "period_start": _dates(_first_day_of_year(year)),
            "period_end": _dates(_first_day_of_year(year + 1) - 1),
            "total_purchases": np.maximum(wallet, 0.01),
        }
    )
    return frame.sort("customer_number", "period_start").select(
        _customer_id(pl.col("customer_number")).alias("customer_id"),
        "period_start",
        "period_end",
        "total_purchases",
    )


def _costs_frame(
    rng: np.random.Generator,
    people: Mapping[str, NDArray[np.generic]],
    first_day: IntArray,
    last_day: IntArray,
    revenue_by_year: FloatArray,
    first_year: int,
    end_day: int,
) -> pl.DataFrame:
    """Acquisition, development, service, retention and year-end rebate costs.

    Several events of one type on one day are summed into one row, because
    (customer_id, cost_date, cost_type) is the key of a cost row.
    """
    buyer_count = first_day.size
    created_day = people["created_day"]
    number_parts: list[IntArray] = []
    day_parts: list[IntArray] = []
    type_parts: list[IntArray] = []
    amount_parts: list[FloatArray] = []

    def add(person: IntArray, day: IntArray, cost_type: str, amount: FloatArray) -> None:
        number_parts.append(people["customer_number"][person])
        day_parts.append(day)
        type_parts.append(np.full(person.size, COST_TYPES.index(cost_type)))
        amount_parts.append(amount)

    everyone = np.arange(created_day.size)
    channel_base = np.asarray(ACQUISITION_COST_BASE)[people["acquisition_channel"]]
    add(everyone, created_day, "acquisition", channel_base * _lognormal(rng, everyone.size))

    development_count = rng.poisson(DEVELOPMENT_EVENTS_MEAN, buyer_count)
    person = np.repeat(np.arange(buyer_count), development_count)
    start = created_day[person]
    length = np.minimum(DEVELOPMENT_DAYS, end_day - start + 1)
    day = start + np.floor(rng.random(person.size) * length).astype(np.int64)
    add(person, day, "development", COST_MEDIANS["development"] * _lognormal(rng, person.size))

    active_end = np.minimum(last_day + SERVICE_SPAN_AFTER_LAST_PURCHASE_DAYS, end_day)
    active_days = active_end - first_day + 1
    for cost_type, per_year in (
        ("service", SERVICE_EVENTS_PER_YEAR),
        ("retention", RETENTION_EVENTS_PER_YEAR),
    ):
        events = rng.poisson(per_year * active_days / 365.25)
        person = np.repeat(np.arange(buyer_count), events)
        day = first_day[person] + np.floor(rng.random(person.size) * active_days[person]).astype(
            np.int64
        )
        add(person, day, cost_type, COST_MEDIANS[cost_type] * _lognormal(rng, person.size))

    year_end_day = np.asarray(
        [
            (date(first_year + offset, 12, 31) - EPOCH).days
            for offset in range(revenue_by_year.shape[1])
        ]
    )
    rebated_buyer, rebated_year = np.nonzero(
        (revenue_by_year >= REBATE_MIN_REVENUE) & (year_end_day <= end_day)[np.newaxis, :]
    )
    add(
        rebated_buyer,
        year_end_day[rebated_year],
        "rebate",
        revenue_by_year[rebated_buyer, rebated_year] * REBATE_RATE,
    )

    number = np.concatenate(number_parts)
    day = np.concatenate(day_parts)
    cost_type = np.concatenate(type_parts)
    key = ((day - day.min()) * (number.max() + 1) + number) * len(COST_TYPES) + cost_type
    unique_key, row_of_key = np.unique(key, return_inverse=True)
    amount = np.bincount(row_of_key, weights=np.concatenate(amount_parts))
    number_and_day, unique_type = np.divmod(unique_key, len(COST_TYPES))
    unique_day, unique_number = np.divmod(number_and_day, number.max() + 1)
    return pl.DataFrame(
        {
            "customer_id": _customer_id_series(unique_number),
            "cost_date": _dates(unique_day + day.min()),
            "cost_type": _labels(COST_TYPES, unique_type),
            "amount": np.maximum(_cents(amount), 0.01),
        }
    )


def _month_end_days(end_day: int, count: int) -> IntArray:
    """The last `count` month-ends on or before `end_day` (the end day itself if it is one)."""
    first_of_next = (
        np.datetime64(EPOCH + timedelta(days=end_day + 1), "M")
        - np.arange(count)[::-1].astype("timedelta64[M]")
    ).astype("datetime64[D]")
    return (first_of_next - np.timedelta64(1, "D")).astype(np.int64)


def _holdings_frame(
    rng: np.random.Generator,
    people: Mapping[str, NDArray[np.generic]],
    last_day: IntArray,
    end_day: int,
) -> pl.DataFrame:
    """Month-end balances of a fifth of the open, recently active buyers (SPEC §10 holdings).

    Holders bought within the last HOLDER_ACTIVE_DAYS: a bank's wealth
    customers also transact, and a holder churned by §4 would only ever be
    tiered general.

    Each holder has a lognormal AUM spread over 1–8 products (Dirichlet
    weights) whose classes follow the risk profile; balances move by class
    (equities most). Some products open late, some are sold (a zero, then
    silence), some stop being reported (stale); some holders withdraw 60 %
    over the last 180 days (AUM decline).
    """
    snapshot_day = _month_end_days(end_day, HOLDINGS_SNAPSHOTS)
    snapshots = snapshot_day.size
    buyer_count = last_day.size
    eligible = ~people["closed"][:buyer_count].astype(bool) & (
        last_day >= end_day - HOLDER_ACTIVE_DAYS
    )
    holder = np.flatnonzero(eligible & (rng.random(buyer_count) < HOLDER_SHARE))
    product_count = np.minimum(1 + rng.poisson(PRODUCTS_EXTRA_MEAN, holder.size), MAX_PRODUCTS)
    owner = np.repeat(np.arange(holder.size), product_count)
    profile = people["risk_profile"][holder][owner]
    cumulative = np.cumsum(np.asarray(PROFILE_CLASS_WEIGHTS), axis=1)[profile]
    asset_class = (rng.random(owner.size)[:, np.newaxis] > cumulative).sum(axis=1)
    catalog = rng.integers(1, CATALOG_SIZE + 1, owner.size)
    # One row per (customer, product): a second draw of the same catalog product is dropped.
    _, first = np.unique(owner * 1000 + asset_class * CATALOG_SIZE + catalog, return_index=True)
    keep = np.sort(first)
    owner, asset_class, catalog = owner[keep], asset_class[keep], catalog[keep]

    aum = AUM_MEDIAN * np.exp(rng.normal(0.0, AUM_SIGMA, holder.size))
    weight = rng.gamma(1.0, size=owner.size)
    weight /= np.bincount(owner, weights=weight, minlength=holder.size)[owner]
    volatility = np.asarray(MONTHLY_VOLATILITY)[asset_class][:, np.newaxis]
    drift = np.asarray(MONTHLY_DRIFT)[asset_class][:, np.newaxis]
    path = np.exp(np.cumsum(drift + volatility * rng.standard_normal((owner.size, snapshots)), 1))
    balance = (aum[owner] * weight)[:, np.newaxis] * path / path[:, -1:]
    withdrawing = rng.random(holder.size) < WITHDRAWING_SHARE
    ramp = np.clip((snapshot_day - (end_day - WITHDRAWAL_DAYS)) / WITHDRAWAL_DAYS, 0.0, 1.0)
    balance *= np.where(withdrawing[owner, np.newaxis], 1.0 - WITHDRAWN_FRACTION * ramp, 1.0)

    opened = np.where(
        rng.random(owner.size) < LATE_OPENED_SHARE, rng.integers(1, snapshots, owner.size), 0
    )
    fate = rng.random(owner.size)
    last = np.full(owner.size, snapshots - 1)
    stale = fate < STALE_SHARE
    last[stale] = rng.integers(0, snapshots - 2, stale.sum())
    sold = (fate >= STALE_SHARE) & (fate < STALE_SHARE + SOLD_SHARE)
    last[sold] = rng.integers(1, snapshots, sold.sum())
    opened = np.minimum(opened, last)
    sold_at = np.where(sold, last, -1)

    position = np.arange(snapshots)[np.newaxis, :]
    reported = (position >= opened[:, np.newaxis]) & (position <= last[:, np.newaxis])
    row_product, row_snapshot = np.nonzero(reported)
    row_balance = _cents(balance[row_product, row_snapshot])
    row_balance[row_snapshot == sold_at[row_product]] = 0.0

    class_of_row = asset_class[row_product]
    catalog_of_row = catalog[row_product]
    product_risk = np.select(
        [
            class_of_row == ASSET_CLASSES.index("funds"),
            class_of_row == ASSET_CLASSES.index("equities"),
        ],
        [2 + catalog_of_row % 3, 4 + catalog_of_row % 2],
        np.asarray([Holdings().class_risk_level[name] for name in ASSET_CLASSES])[class_of_row],
    )
    explicit_risk = rng.random(owner.size)[row_product] < EXPLICIT_RISK_SHARE
    time_deposit = (class_of_row == ASSET_CLASSES.index("cash")) & (
        catalog_of_row >= TIME_DEPOSIT_FROM
    )
    goal_cumulative = np.cumsum(GOAL_WEIGHTS)
    goal = (rng.random(owner.size)[:, np.newaxis] > goal_cumulative).sum(axis=1)
    frame = pl.DataFrame(
        {
            "customer_number": people["customer_number"][holder][owner[row_product]],
            "day": snapshot_day[row_snapshot].astype(np.int32),
            "class": class_of_row,
            "catalog": catalog_of_row,
            "balance": row_balance,
            "time_deposit": time_deposit,
            "risk": np.where(explicit_risk, product_risk, 0),
            "goal": goal[row_product],
        }
    )
    return frame.sort("day", "customer_number", "class", "catalog").select(
        _customer_id(pl.col("customer_number")).alias("customer_id"),
        pl.col("day").cast(pl.Date).alias("balance_date"),
        pl.concat_str(
            pl.col("class").replace_strict(dict(enumerate(CLASS_CODES)), return_dtype=pl.String),
            pl.col("catalog").cast(pl.String).str.zfill(3),
        ).alias("product_id"),
        pl.col("class")
        .replace_strict(dict(enumerate(ASSET_CLASSES)), return_dtype=pl.String)
        .alias("asset_class"),
        "balance",
        pl.when(pl.col("time_deposit")).then(pl.lit("medium")).alias("liquidity"),
        pl.when(pl.col("risk") > 0).then(pl.format("R{}", pl.col("risk"))).alias("risk_level"),
        pl.col("goal")
        .replace_strict(dict(enumerate(GOALS)), default=None, return_dtype=pl.String)
        .alias("goal"),
    )


def _write_holdings(frame: pl.DataFrame, folder: Path) -> tuple[list[Path], int]:
    """One file per month-end, as a monthly feed delivers them; returns the files and rows."""
    paths = []
    for (day,), part in frame.partition_by(
        "balance_date", as_dict=True, maintain_order=True
    ).items():
        paths.append(folder / f"holdings_{day.isoformat()}.csv")
        _write_csv(part, paths[-1])
    return paths, frame.height


def _feed_order(transactions: _Transactions, customer_number: IntArray) -> IntArray:
    """Row order of the feed: by date, then customer id; transaction ids are numbered in it.

    The sort is stable, so one customer's rows of one day keep their order:
    purchases by time, then the second halves of split orders, then returns.
    """
    return np.argsort(
        (transactions.day - transactions.day.min()) * (customer_number.max() + 1)
        + customer_number[transactions.buyer],
        kind="stable",
    )


def _transactions_frame(transactions: _Transactions, customer_number: IntArray) -> pl.DataFrame:
    """The canonical transactions table; transaction ids number the rows in their given order."""
    rows = transactions.day.size
    return pl.DataFrame(
        {
            "transaction_id": pl.select(
                pl.format(
                    "T{}",
                    pl.int_range(1, rows + 1).cast(pl.String).str.zfill(TRANSACTION_ID_DIGITS),
                )
            ).to_series(),
            "customer_id": _customer_id_series(customer_number[transactions.buyer]),
            "transaction_date": _dates(transactions.day),
            "amount": transactions.amount,
            "cost": transactions.cost,
            "quantity": transactions.quantity,
            "category": _labels(tuple(CATEGORY_MARGINS), transactions.category),
            "channel": _labels(CHANNELS, transactions.channel),
            "discount": transactions.discount,
            "currency": pl.repeat("USD", rows, eager=True),
        }
    )


def _write_transaction_feed(
    rng: np.random.Generator,
    frame: pl.DataFrame,
    folder: Path,
    end_date: date,
    daily_files: int,
    suffix: str,
) -> tuple[list[Path], dict[str, object]]:
    """Write the history file and one file per day; the last one re-sends two earlier rows.

    One re-sent row carries a corrected amount (same transaction_id, so the
    pipeline must replace it and keep the old row for audit) and one is an
    exact duplicate (the pipeline must count it and load it once).
    """
    first_daily = end_date - timedelta(days=daily_files - 1)
    day_column = frame["transaction_date"]
    daily_dates = [first_daily + timedelta(days=offset) for offset in range(daily_files)]
    bounds = [day_column.search_sorted(day, side="left") for day in daily_dates]
    bounds.append(frame.height)

    earlier_rows = frame.slice(0, bounds[-2])
    candidates = np.flatnonzero(earlier_rows["amount"].to_numpy() >= 10.0)
    if candidates.size < 2:
        raise ValueError("too few transactions before the last daily file to re-send two of them")
    corrected_row, duplicated_row = rng.choice(candidates, size=2, replace=False)
    original = earlier_rows.row(int(corrected_row), named=True)
    corrected_amount = _cents(np.asarray(original["amount"] * CORRECTION_FACTOR)).item()
    resent = pl.concat(
        [
            earlier_rows.slice(int(corrected_row), 1).with_columns(
                pl.lit(corrected_amount).alias("amount")
            ),
            earlier_rows.slice(int(duplicated_row), 1),
        ]
    )
    duplicate_id = resent["transaction_id"][1]

    def write(part: pl.DataFrame, path: Path) -> None:
        if suffix == ".parquet":
            part.write_parquet(path)
        else:
            _write_csv(part, path)

    history_end = first_daily - timedelta(days=1)
    paths = [folder / f"transactions_{history_end.isoformat()}_history{suffix}"]
    write(frame.slice(0, bounds[0]), paths[0])
    for index, day in enumerate(daily_dates):
        part = frame.slice(bounds[index], bounds[index + 1] - bounds[index])
        if index == daily_files - 1:
            part = pl.concat([part, resent])
        paths.append(folder / f"transactions_{day.isoformat()}{suffix}")
        write(part, paths[-1])
    facts: dict[str, object] = {
        "corrected_transaction_id": original["transaction_id"],
        "corrected_original_amount": original["amount"],
        "corrected_amount": corrected_amount,
        "duplicated_transaction_id": duplicate_id,
        "resent_in_file": paths[-1].name,
    }
    return paths, facts


def _sidecar(
    parameters: Mapping[str, object],
    buyers: int,
    prospects: int,
    window_start: float,
    counts: Mapping[str, int],
    feed_facts: Mapping[str, object],
    files: list[Path],
    inbox: Path,
) -> dict[str, object]:
    """The ground truth a fit is validated against; no timings, so the file is byte-stable."""
    return {
        "generator": "customer_equity.generate",
        "seed": parameters["seed"],
        "end_date": parameters["end_date"],
        "acquisition_window_start": (
            EPOCH + timedelta(days=int(np.ceil(window_start)))
        ).isoformat(),
        "customers": parameters["customers"],
        "buyers": buyers,
        "prospects": prospects,
        "years": parameters["years"],
        "daily_files": parameters["daily_files"],
        "file_format": parameters["file_format"],
        "amount_is": "net revenue in USD after discount; negative = return",
        "bgnbd": {
            **asdict(PURCHASE_PROCESS),
            "dropout": "after each repeat purchase (FHL 2005); first purchase at acquisition",
        },
        "gamma_gamma": asdict(SPEND_PROCESS),
        "spend_trend": {
            "ramp_days": TREND_RAMP_DAYS,
            "kinds": {
                kind: {"share": share, "final_multiplier": multiplier}
                for kind, share, multiplier in zip(
                    TREND_KINDS, TREND_SHARES, TREND_FINAL_MULTIPLIERS, strict=True
                )
            },
        },
        "category_margins": CATEGORY_MARGINS,
        "cross_sell_share_beta": list(CROSS_SELL_BETA),
        "same_day_split_share": SPLIT_SHARE,
        "return_share": RETURN_SHARE,
        "return_max_days": RETURN_MAX_DAYS,
        "discounted_share": DISCOUNTED_SHARE,
        "wallet": {
            "coverage_of_buyers": WALLET_COVERAGE,
            "share_k": "0.05 + 0.95 * Beta(1.2, 1.5)",
            "total_purchases": "max(yearly expected spend * lognormal(0, 0.1), our revenue / K)",
        },
        "closed_share": CLOSED_SHARE,
        "referred_share": REFERRED_SHARE,
        "prospect_share": PROSPECT_SHARE,
        "holdings": {
            "holder_share_of_eligible_buyers": HOLDER_SHARE,
            "holders_bought_within_days": HOLDER_ACTIVE_DAYS,
            "month_end_snapshots": HOLDINGS_SNAPSHOTS,
            "aum": f"lognormal, median {AUM_MEDIAN:g}, sigma {AUM_SIGMA}",
            "stale_share": STALE_SHARE,
            "sold_share": SOLD_SHARE,
            "withdrawing_share": WITHDRAWING_SHARE,
            "withdrawn_fraction": WITHDRAWN_FRACTION,
        },
        **feed_facts,
        "counts": dict(counts),
        "files": [path.relative_to(inbox).as_posix() for path in files],
    }


def _write_csv(frame: pl.DataFrame, path: Path) -> int:
    """Write money with exactly two decimals (ISO dates are Polars' default); return the rows."""
    frame.write_csv(path, float_precision=2)
    return frame.height


def _cents(values: FloatArray) -> FloatArray:
    """Round to cents; adding 0.0 turns -0.0 into 0.0 so no file shows '-0.00'."""
    return np.round(values, 2) + 0.0


def _lognormal(rng: np.random.Generator, size: int) -> FloatArray:
    """Multiplicative noise with median 1 for cost amounts."""
    return np.exp(rng.normal(0.0, 0.35, size))


def _year_of(day: IntArray) -> IntArray:
    return day.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def _first_day_of_year(year: IntArray) -> IntArray:
    return (year - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)


def _dates(day: IntArray) -> pl.Series:
    return pl.Series(day.astype(np.int32)).cast(pl.Date)


def _labels(names: tuple[str, ...], index: IntArray) -> pl.Series:
    return pl.Series(names).gather(index)


def _customer_id(number: pl.Expr) -> pl.Expr:
    return pl.format("C{}", number.cast(pl.String).str.zfill(CUSTOMER_ID_DIGITS))


def _customer_id_series(number: IntArray) -> pl.Series:
    return pl.DataFrame({"number": number}).select(_customer_id(pl.col("number"))).to_series()
