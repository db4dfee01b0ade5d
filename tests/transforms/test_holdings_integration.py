"""The wealth view inside the other tables: AUM as a tiering metric, equity by AUM tier.

The customers of tests/transforms/test_outputs.py (A and B active, C churned,
P a prospect) plus holdings as of D: A holds 700,000 (affluent), B 100
(mass); the customers extract declares A's AUM as 5,000,000 and C's as
9,000,000. The `aum` rule set of the README (core ≥ 6,000,000, important ≥
500,000) then tiers A important (the holdings, not the declaration) and B
general; C keeps its declared AUM, but churned customers are general.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from customer_equity.schemas.outputs import conform
from customer_equity.settings import Settings
from customer_equity.transforms.outputs import Inputs, whole_base_tables
from tests.conftest import AS_OF
from tests.transforms.test_holdings import holdings
from tests.transforms.test_outputs import COSTS, TX, WALLETS

SETTINGS = Settings.model_validate(
    {
        "tiers": {
            "rule_sets": {
                "clv": {},
                "aum": {"metric": "aum", "method": "threshold", "core": 6e6, "important": 5e5},
            }
        }
    }
)
CUSTOMERS = pl.LazyFrame(
    {
        "customer_id": ["A", "B", "C", "P"],
        "created_date": [date(2024, 5, 1), date(2025, 11, 1), date(2024, 9, 1), date(2025, 6, 1)],
        "acquisition_channel": [None] * 4,
        "segment": ["x", "x", "y", "x"],
        "region": ["north"] * 4,
        "referred_by": [None, "A", None, None],
        "status": ["active"] * 4,
        "closed_date": [None] * 4,
        "risk_profile": ["steady", "balanced", None, None],
        "aum": [5_000_000.0, None, 9_000_000.0, None],
    },
    schema_overrides={
        "closed_date": pl.Date,
        "referred_by": pl.String,
        "acquisition_channel": pl.String,
    },
)
HOLDINGS = holdings(
    ("A", AS_OF, "F1", "funds", 700_000.0),
    ("B", date(2025, 12, 20), "D1", "cash", 100.0),
    ("A", date(2026, 1, 5), "F1", "funds", 9_000_000.0),  # after D: never seen
)


def _tables(with_holdings: bool) -> dict[str, pl.DataFrame]:
    extra = {"holdings": HOLDINGS} if with_holdings else {}
    built = whole_base_tables(Inputs(TX, CUSTOMERS, WALLETS, COSTS, **extra), AS_OF, SETTINGS)
    return {name: conform(name, frame) for name, frame in built.items()}


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    return _tables(with_holdings=True)


@pytest.fixture(scope="module")
def without() -> dict[str, pl.DataFrame]:
    return _tables(with_holdings=False)


def _aum_tiers(tables: dict[str, pl.DataFrame]) -> dict[str, tuple[str, str | None]]:
    aum = tables["customer_tiers"].filter(pl.col("rule_set") == "aum")
    return {r["customer_id"]: (r["value_tier"], r["tier_metric_value"]) for r in aum.to_dicts()}


def test_aum_from_the_holdings_tiers_customers(tables: dict[str, pl.DataFrame]) -> None:
    assert _aum_tiers(tables) == {
        "A": ("important", "700000.0"),
        "B": ("general", "100.0"),
        "C": ("general", "9000000.0"),  # churned: general whatever the AUM
        "P": ("general", None),
    }
    assert set(tables["customer_holdings"]["customer_id"]) == {"A", "B"}


def test_without_holdings_the_declared_aum_is_used(without: dict[str, pl.DataFrame]) -> None:
    assert _aum_tiers(without) == {
        "A": ("important", "5000000.0"),
        "B": ("general", None),
        "C": ("general", "9000000.0"),
        "P": ("general", None),
    }
    assert "customer_holdings" not in without and "holdings_mix" not in without


def test_equity_gains_aum_tier_groups_only_with_holdings(
    tables: dict[str, pl.DataFrame], without: dict[str, pl.DataFrame]
) -> None:
    equity, plain = tables["customer_equity"], without["customer_equity"]
    assert not plain["group_by"].is_in(["aum_tier"]).any()
    assert equity.filter(pl.col("group_by") != "aum_tier").equals(plain)
    rows = {r["group_value"]: r for r in equity.filter(pl.col("group_by") == "aum_tier").to_dicts()}
    assert set(rows) == {"affluent", "mass"}  # every active customer holds something
    assert (rows["affluent"]["customers"], rows["mass"]["customers"]) == (1, 1)  # A and B
    r_of = dict(tables["customer_value"].select("customer_id", "churn_rate").iter_rows())
    assert rows["affluent"]["churn_rate"] == pytest.approx(r_of["A"])  # a tier of members
    assert rows["affluent"]["lifetime_source"] == "members"


def test_retention_economics_counts_acquisitions_per_aum_tier(
    tables: dict[str, pl.DataFrame],
) -> None:
    """SPEC §11 per customer_equity group, AUM tiers included.

    B (mass) first bought on 2025-12-01, inside the 365 days ending on D; A
    (affluent) first bought on 2024-06-01, outside them: mass acquired 1,
    affluent 0, as the whole base (1). Before AUM tiers were grouped here, the
    mass row claimed no acquisition at all.
    """
    retention = tables["retention_economics"]
    by_tier = retention.filter(pl.col("group_by") == "aum_tier")
    assert dict(by_tier.select("group_value", "customers_acquired").iter_rows()) == {
        "affluent": 0,
        "mass": 1,
    }
    base = retention.filter(pl.col("group_by") == "base")
    assert base["customers_acquired"].to_list() == [1]
    equity = tables["customer_equity"].filter(pl.col("group_by") == "aum_tier")
    assert (
        by_tier.select("group_value", "customers")
        .sort("group_value")
        .equals(equity.select("group_value", "customers").sort("group_value"))
    )
