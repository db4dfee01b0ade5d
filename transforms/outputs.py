"""The output tables of SPEC §9, each assembled from the concept modules.

Inputs are the warehouse tables as LazyFrames (any dates); every function cuts
them to rows dated ≤ D itself, so a backfill for D sees exactly what a nightly
run on D saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from customer_equity.settings import Settings
from transforms import churn as churn_rules
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
from transforms.profit import profit_decomposition
from transforms.share import (
    contribution_identity,
    prospect_estimate,
    purchase_share,
    wallet_overlap,
)
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
    status = churn_rules.churn_status(
        summary.select("customer_id", "last_purchase_date"),
        data.customers,
        as_of,
        metrics.churn_after_days,
    )
    frame = (
        everyone.join(data.customers.select("customer_id", "segment"), on="customer_id", how="left")
        .join(summary, on="customer_id", how="left")
        .join(window_metrics(transactions, window), on="customer_id", how="left")
        .with_columns(
            pl.col("orders").fill_null(0).cast(pl.Int64),
            *(pl.col(c).fill_null(0.0) for c in ("revenue", "cost", "gross_margin")),
            pl.col("first_purchase_date").is_null().alias("is_prospect"),
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
    return frame.select(CUSTOMER_METRICS_COLUMNS).sort("customer_id")


CUSTOMER_METRICS_COLUMNS = [
    "customer_id",
    "segment",
    "first_purchase_date",
    "last_purchase_date",
    "orders",
    "revenue",
    "cost",
    "gross_margin",
    "margin_rate",
    "avg_order_value",
    "purchase_frequency",
    "purchase_share",
    "purchase_share_clipped",
    "annual_gross_margin",
    "annual_contribution",
    "wallet_per_order",
    "annual_margin_pkmn",
    "estimated_annual_margin",
    "serve_cost",
    "acquisition_cost",
    "core_category",
    "basic_profit",
    "cross_sell_profit",
    "referral_value",
    "price_concessions",
    "repeat_purchases",
    "recency_days",
    "age_days",
    "monetary_value",
    "tenure_days",
    "days_since_last_purchase",
    "days_to_churn",
    "churned",
    "p_alive",
    "revenue_recent",
    "revenue_prior",
    "wallet_recent",
    "wallet_prior",
    "is_prospect",
    "lifecycle_stage",
    "stage_reason",
]


def churn(inputs: Inputs, as_of: date, settings: Settings) -> pl.LazyFrame:
    """`churn`: r and T = 1/r for the whole base and per segment, with the counts behind r."""
    data = inputs.as_of(as_of)
    return churn_rules.churn_rates(
        purchase_dates(data.transactions),
        data.customers,
        as_of,
        settings.metrics.churn_after_days,
    )


def cohort_retention(inputs: Inputs, as_of: date) -> pl.LazyFrame:
    """`cohort_retention` (SPEC §4)."""
    data = inputs.as_of(as_of)
    return retention_triangle(purchase_dates(data.transactions), as_of)
