"""SPEC §5 lifecycle stages: one hand-made customer per rule, rule order, boundaries.

Every customer starts from BASE — an active buyer of 300 days' tenure, no
wallet, revenue 100 in each 180-day half — which is growth: not churned,
not a prospect, tenure > 180, revenue change 0 % (no decline), no wallet and
tenure ≤ 365 (no maturity). Each test changes only the figures it is about.
Defaults: development_days 180, decline_drop 0.3, maturity_share 0.6.
"""

from __future__ import annotations

import polars as pl
import pytest

from customer_equity.settings import Lifecycle
from customer_equity.transforms.lifecycle import STAGES, lifecycle_stage

SCHEMA = {
    "customer_id": pl.String,
    "churned": pl.Boolean,
    "closed": pl.Boolean,
    "days_since_last_purchase": pl.Int64,
    "is_prospect": pl.Boolean,
    "tenure_days": pl.Int64,
    "purchase_share": pl.Float64,
    "revenue_recent": pl.Float64,
    "revenue_prior": pl.Float64,
    "wallet_recent": pl.Float64,
    "wallet_prior": pl.Float64,
}
BASE: dict[str, object] = {
    "churned": False,
    "closed": False,
    "days_since_last_purchase": 10,
    "is_prospect": False,
    "tenure_days": 300,
    "purchase_share": None,
    "revenue_recent": 100.0,
    "revenue_prior": 100.0,
    "wallet_recent": None,
    "wallet_prior": None,
}
PROSPECT = {
    "is_prospect": True,
    "days_since_last_purchase": None,
    "tenure_days": None,
    "revenue_recent": 0.0,
    "revenue_prior": 0.0,
}


def stages(
    customers: dict[str, dict[str, object]], lifecycle: Lifecycle | None = None
) -> dict[str, tuple[str, str]]:
    rows = [{**BASE, **changes, "customer_id": name} for name, changes in customers.items()]
    frame = pl.DataFrame(rows, schema=SCHEMA).lazy()
    result = lifecycle_stage(frame, lifecycle or Lifecycle()).collect()
    return {
        row["customer_id"]: (row["lifecycle_stage"], row["stage_reason"])
        for row in result.to_dicts()
    }


def stage(lifecycle: Lifecycle | None = None, **changes: object) -> str:
    return stages({"x": changes}, lifecycle)["x"][0]


def reason(lifecycle: Lifecycle | None = None, **changes: object) -> str:
    return stages({"x": changes}, lifecycle)["x"][1]


# --- each of the six stages ---------------------------------------------------------------------


def test_each_stage_is_reached() -> None:
    result = stages(
        {
            "lapsed": {"churned": True, "days_since_last_purchase": 400},
            "prospect": PROSPECT,
            "new": {"tenure_days": 90},
            # −40 %, wallet unknown → decline
            "falling": {"tenure_days": 500, "revenue_recent": 60.0},
            # share 0.75 ≥ 0.6
            "loyal": {"purchase_share": 0.75},
            "plain": {},
        }
    )
    assert {name: s for name, (s, _) in result.items()} == {
        "lapsed": "termination",
        "prospect": "potential",
        "new": "development",
        "falling": "decline",
        "loyal": "maturity",
        "plain": "growth",
    }
    assert {s for s, _ in result.values()} == set(STAGES)


def test_reasons_contain_the_figures() -> None:
    result = stages(
        {
            "lapsed": {"churned": True, "days_since_last_purchase": 400},
            "closed": {"churned": True, "closed": True},
            "prospect": PROSPECT,
            "new": {"tenure_days": 90},
            "falling": {"tenure_days": 500, "revenue_recent": 60.0},
            "loyal": {"purchase_share": 0.75},
            "steady": {"tenure_days": 400, "revenue_recent": 110.0},
            "plain": {"purchase_share": 0.2, "revenue_recent": 125.0},
        }
    )
    why = {name: text for name, (_, text) in result.items()}
    assert why["lapsed"] == "termination: last purchase 400 days ago"
    assert why["closed"] == "termination: relationship closed"
    assert why["prospect"] == "potential: known, no purchase yet"
    assert why["new"] == "development: first purchase 89 days ago"  # tenure 90 counts D itself
    assert why["falling"] == (
        "decline: revenue last 180 days 60.0 vs 100.0 before (-40%), "
        "customer's business unknown (taken as stable)"
    )
    assert why["loyal"] == "maturity: purchase share 75%"
    # 110 / 100 − 1 = +10 %
    assert why["steady"] == "maturity: no wallet, tenure 400 days, revenue change 10%"
    assert why["plain"] == "growth: active, purchase share 20%, revenue change 25%"


# --- rule order ---------------------------------------------------------------------------------


def test_churned_customer_with_a_decline_pattern_is_termination() -> None:
    assert stage(churned=True, tenure_days=500, revenue_recent=10.0) == "termination"


def test_closed_prospect_is_termination_an_open_one_potential() -> None:
    assert stage(**PROSPECT, churned=True, closed=True) == "termination"
    assert stage(**PROSPECT) == "potential"


def test_development_wins_over_decline_and_maturity() -> None:
    # tenure 100 ≤ 180: −90 % and a share of 0.9 do not matter yet
    assert stage(tenure_days=100, revenue_recent=10.0, purchase_share=0.9) == "development"


def test_decline_wins_over_maturity() -> None:
    # share 0.9 ≥ 0.6 but revenue −40 % with the wallet unknown
    assert stage(tenure_days=500, revenue_recent=60.0, purchase_share=0.9) == "decline"


# --- development boundary -----------------------------------------------------------------------


def test_development_boundary_180_vs_181_days() -> None:
    assert stage(tenure_days=180) == "development"  # first purchase 179 days ago: within 180
    assert stage(tenure_days=181) == "growth"  # 180 days ago: outside the last 180 days


# --- decline ------------------------------------------------------------------------------------


def test_decline_when_customers_business_fell_less() -> None:
    # ours 100 → 60 (−40 %), theirs 1,000 → 900 (−10 %): we lost share
    why = reason(revenue_recent=60.0, wallet_prior=1000.0, wallet_recent=900.0)
    assert why.startswith("decline:")
    assert "(-40%)" in why
    assert "customer's business -10%" in why


@pytest.mark.parametrize("wallet_recent", [600.0, 500.0])
def test_no_decline_when_customers_business_fell_as_much(wallet_recent: float) -> None:
    # ours −40 %; theirs −40 % (600) or −50 % (500): not our loss of share
    assert (
        stage(
            revenue_recent=60.0,
            purchase_share=0.1,
            wallet_prior=1000.0,
            wallet_recent=wallet_recent,
        )
        == "growth"
    )


def test_wallet_unknown_is_treated_as_stable_business() -> None:
    assert stage(revenue_recent=60.0) == "decline"


def test_decline_drop_boundary() -> None:
    # 75 / 100 − 1 = −0.25 exactly (binary-exact): "fell by at least" includes the boundary
    assert stage(Lifecycle(decline_drop=0.25), revenue_recent=75.0) == "decline"
    assert stage(Lifecycle(decline_drop=0.25), revenue_recent=76.0) == "growth"
    assert stage(revenue_recent=75.0) == "growth"  # −25 % is not a 30 % drop


def test_no_prior_revenue_is_not_a_decline() -> None:
    # nothing to compare with: change is null, not −100 % or +inf
    assert stage(revenue_prior=0.0, revenue_recent=0.0, tenure_days=300) == "growth"
    assert stage(revenue_prior=0.0, revenue_recent=50.0, tenure_days=400) == "growth"


# --- maturity -----------------------------------------------------------------------------------


def test_maturity_with_wallet_is_share_at_least_threshold() -> None:
    assert stage(purchase_share=0.6) == "maturity"
    assert stage(purchase_share=0.59) == "growth"


def test_with_wallet_tenure_and_stability_do_not_make_maturity() -> None:
    # a known low share is not mature even after years of stable revenue
    assert stage(purchase_share=0.3, tenure_days=1000) == "growth"


def test_maturity_without_wallet_needs_tenure_and_stable_revenue() -> None:
    assert stage(tenure_days=400, revenue_recent=125.0) == "maturity"  # +25 % within ±30 %
    assert stage(tenure_days=400, revenue_recent=140.0) == "growth"  # +40 %: still growing
    assert stage(tenure_days=300, revenue_recent=100.0) == "growth"  # under a year
    # no revenue in either half (but not churned): stable at zero
    assert stage(tenure_days=400, revenue_recent=0.0, revenue_prior=0.0) == "maturity"
    assert reason(tenure_days=400, revenue_recent=0.0, revenue_prior=0.0).endswith(
        "revenue change 0%"
    )


def test_maturity_tenure_boundary_without_wallet() -> None:
    """Current rule: tenure_days > 365 (tenure_days counts D itself); see the report."""
    assert stage(tenure_days=365) == "growth"
    assert stage(tenure_days=366) == "maturity"


# --- configurable thresholds --------------------------------------------------------------------


def test_thresholds_change_the_outcome() -> None:
    assert stage(Lifecycle(development_days=90), tenure_days=120) == "growth"
    assert stage(Lifecycle(development_days=150), tenure_days=150) == "development"
    # −40 % is not a 50 % drop; tenure 300, no wallet → growth
    assert stage(Lifecycle(decline_drop=0.5), revenue_recent=60.0) == "growth"
    assert stage(Lifecycle(maturity_share=0.8), purchase_share=0.75) == "growth"
    # a ±50 % band makes +40 % stable → maturity without wallet
    assert stage(Lifecycle(decline_drop=0.5), tenure_days=400, revenue_recent=140.0) == "maturity"


def test_decline_window_days_appears_in_the_reason() -> None:
    why = reason(Lifecycle(decline_window_days=90), revenue_recent=60.0)
    assert why.startswith("decline: revenue last 90 days 60.0 vs 100.0")
