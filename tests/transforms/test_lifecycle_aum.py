"""SPEC §10 lifecycle: with `decline_on = "aum"` a customer with holdings declines on AUM.

Every customer starts from test_lifecycle.BASE (growth: revenue 100 in both
halves, no wallet, tenure 300); AUM figures are added per case. Default
decline drop 30 %.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from customer_equity.settings import Lifecycle, Settings
from customer_equity.transforms.lifecycle import lifecycle_stage
from customer_equity.transforms.outputs import Inputs, customer_metrics
from tests.conftest import AS_OF, transactions
from tests.transforms.test_holdings import customers, holdings
from tests.transforms.test_lifecycle import BASE, SCHEMA

BY_AUM = Lifecycle(decline_on="aum")
AUM_SCHEMA = {**SCHEMA, "aum_recent": pl.Float64, "aum_prior": pl.Float64}


def judged(lifecycle: Lifecycle, **changes: object) -> tuple[str, str]:
    row = {**BASE, "aum_recent": None, "aum_prior": None, **changes, "customer_id": "x"}
    result = lifecycle_stage(pl.DataFrame([row], schema=AUM_SCHEMA).lazy(), lifecycle).collect()
    return result["lifecycle_stage"][0], result["stage_reason"][0]


def test_aum_fall_is_decline_even_with_steady_revenue() -> None:
    # AUM 100,000 → 60,000 (−40 %), revenue flat, wallet unknown
    stage, why = judged(BY_AUM, aum_recent=60_000.0, aum_prior=100_000.0)
    assert stage == "decline"
    assert why == (
        "decline: AUM 60000.0 on D vs 100000.0 180 days before (-40%), "
        "customer's business unknown (taken as stable)"
    )
    # the same customer judged on revenue (the default) is not in decline
    assert judged(Lifecycle(), aum_recent=60_000.0, aum_prior=100_000.0)[0] == "growth"


def test_steady_aum_overrides_a_revenue_fall_for_a_holder() -> None:
    assert judged(BY_AUM, revenue_recent=10.0, aum_recent=95_000.0, aum_prior=100_000.0)[0] == (
        "growth"
    )


def test_customer_without_holdings_keeps_the_revenue_rule() -> None:
    stage, why = judged(BY_AUM, revenue_recent=60.0)
    assert stage == "decline" and why.startswith("decline: revenue last 180 days")


def test_a_wallet_that_fell_as_much_means_no_decline() -> None:
    # AUM −40 %, the customer's whole business −50 %: not our loss
    kept = {"aum_recent": 60_000.0, "aum_prior": 100_000.0, "purchase_share": 0.1}
    assert judged(BY_AUM, **kept, wallet_prior=1000.0, wallet_recent=500.0)[0] == "growth"
    assert judged(BY_AUM, **kept, wallet_prior=1000.0, wallet_recent=900.0)[0] == "decline"


def test_no_earlier_aum_is_no_decline() -> None:
    assert judged(BY_AUM, revenue_recent=10.0, aum_recent=60_000.0, aum_prior=None)[0] == "growth"


@pytest.mark.parametrize(("decline_on", "expected"), [("aum", "decline"), ("revenue", "maturity")])
def test_customer_metrics_reads_aum_from_the_holdings(decline_on: str, expected: str) -> None:
    """Buyer H: 100 in each decline half (revenue change 0 %), tenure over a year, no wallet.

    On revenue that is maturity (stable for over a year). Holdings: a fund of
    100,000 on 2025-06-30 (the position of D − 180 = 2025-07-04) and 50,000 on
    2025-12-31 → AUM −50 %: on AUM, decline.
    """
    tx = transactions(
        ("H0", "H", date(2024, 1, 10), 100.0, 50.0),
        ("H1", "H", date(2025, 3, 1), 100.0, 50.0),
        ("H2", "H", date(2025, 9, 1), 100.0, 50.0),
    )
    rows = holdings(
        ("H", date(2025, 6, 30), "F1", "funds", 100_000.0),
        ("H", date(2025, 12, 31), "F1", "funds", 50_000.0),
    )
    people = customers(("H", "steady")).with_columns(
        pl.lit(None, dtype=pl.String).alias("referred_by"),
        pl.lit(None, dtype=pl.String).alias("status"),
        pl.lit(None, dtype=pl.Date).alias("closed_date"),
    )
    wallets = pl.LazyFrame(
        schema={
            "customer_id": pl.String,
            "period_start": pl.Date,
            "period_end": pl.Date,
            "total_purchases": pl.Float64,
        }
    )
    costs = pl.LazyFrame(
        schema={
            "customer_id": pl.String,
            "cost_date": pl.Date,
            "cost_type": pl.String,
            "amount": pl.Float64,
        }
    )
    settings = Settings.model_validate({"lifecycle": {"decline_on": decline_on}})
    (row,) = (
        customer_metrics(Inputs(tx, people, wallets, costs, rows), AS_OF, settings)
        .collect()
        .to_dicts()
    )
    assert row["lifecycle_stage"] == expected
    if decline_on == "aum":
        assert row["stage_reason"].startswith("decline: AUM 50000.0 on D vs 100000.0 180 days")
