"""SPEC §8 tiers by rule set and the action matrix."""

from __future__ import annotations

import polars as pl
import pytest

from customer_equity.settings import ConfigError, TierRule, Tiers, load_settings
from customer_equity.transforms.tiers import customer_tiers, value_tier


def _customers(n: int = 20) -> pl.LazyFrame:
    """n active customers with CLV n … 1, plus a churned one and a prospect with huge values."""
    return pl.LazyFrame(
        {
            "customer_id": [f"C{i:02d}" for i in range(n)] + ["churned", "prospect"],
            "clv_annuity": [float(n - i) for i in range(n)] + [1e9, 1e9],
            "aum": [float(i * 100_000) for i in range(n)] + [1e9, 1e9],
            "risk_profile": ["aggressive", "steady"] * (n // 2) + ["aggressive", "aggressive"],
            "churned": [False] * n + [True, False],
            "is_prospect": [False] * n + [False, True],
            "lifecycle_stage": ["growth"] * n + ["termination", "potential"],
        }
    )


def _tiers(frame: pl.LazyFrame) -> dict[str, str]:
    return dict(frame.select("customer_id", "value_tier").collect().iter_rows())


def test_percentile_shares_are_exact() -> None:
    tiers = _tiers(value_tier(_customers(20), "clv", TierRule()))
    assert [tiers[f"C{i:02d}"] for i in range(20)] == ["core"] * 2 + ["important"] * 6 + [
        "general"
    ] * 12
    assert tiers["churned"] == "general" and tiers["prospect"] == "general"  # not ranked


def test_non_positive_clv_is_general_and_flagged() -> None:
    customers = _customers(10).with_columns(pl.col("clv_annuity") - 9.5)  # only C00 positive
    tiered = value_tier(customers, "clv", TierRule(core=0.5, important=0.5)).collect()
    rows = {r["customer_id"]: r for r in tiered.to_dicts()}
    assert rows["C00"]["value_tier"] == "core" and not rows["C00"]["unprofitable"]
    assert rows["C01"]["value_tier"] == "general" and rows["C01"]["unprofitable"]
    assert not rows["churned"]["unprofitable"]  # only active customers are judged


def test_threshold_and_mapping_rules() -> None:
    by_aum = _tiers(
        value_tier(
            _customers(),
            "aum",
            TierRule(metric="aum", method="threshold", core=1_500_000, important=500_000),
        )
    )
    assert by_aum["C15"] == "core" and by_aum["C05"] == "important" and by_aum["C04"] == "general"
    by_risk = _tiers(
        value_tier(
            _customers(),
            "risk",
            TierRule(metric="risk_profile", method="mapping", values={"aggressive": "core"}),
        )
    )
    assert by_risk["C00"] == "core" and by_risk["C01"] == "general"


def test_actions_follow_the_matrix_per_rule_set() -> None:
    tiers = Tiers(
        rule_sets={
            "clv": TierRule(),
            "aum": TierRule(metric="aum", method="threshold", core=1e6, important=1e5),
        },
        actions={
            "*.growth": "grow",
            "*.termination": "close",
            "*.potential": "screen",
            "*.development": "onboard",
            "*.decline": "call",
            "*.maturity": "keep",
            "core.growth": "invest",
        },
    )
    table = customer_tiers(_customers(), tiers).collect()
    assert table.height == 2 * 22
    clv = {
        r["customer_id"]: r["action"] for r in table.filter(pl.col("rule_set") == "clv").to_dicts()
    }
    assert clv["C00"] == "invest" and clv["C10"] == "grow" and clv["prospect"] == "screen"


def test_default_actions_match_spec() -> None:
    tiers = Tiers()
    assert tiers.action("core", "decline") == "win back"
    assert tiers.action("important", "decline") == "win back"
    assert tiers.action("general", "decline") == "let go"
    assert tiers.action("core", "maturity") == "retain"
    assert tiers.action("general", "growth") == "develop"
    assert tiers.action("core", "potential") == "screen"
    assert tiers.action("general", "termination") == "close out"


def test_an_incomplete_action_matrix_is_a_config_error(tmp_path) -> None:
    config = tmp_path / "ce.toml"
    config.write_text('[tiers.actions]\n"core.decline" = "call"\n')
    with pytest.raises(ConfigError, match="no action for"):
        load_settings(config)


def test_shares_are_exact_and_ordered_through_the_whole_table() -> None:
    """1,000 shuffled active customers: 100 core, 300 important, 600 general, by CLV order."""
    n = 1000
    shuffled = (
        _customers(n)
        .filter(pl.col("customer_id").str.starts_with("C"))
        .collect()
        .sample(fraction=1.0, shuffle=True, seed=3)
        .lazy()
    )
    table = customer_tiers(shuffled, Tiers()).collect()
    counts = dict(table.group_by("value_tier").len().iter_rows())
    assert counts == {"core": 100, "important": 300, "general": 600}
    bounds = table.group_by("value_tier").agg(
        pl.col("clv_annuity").min().alias("low"), pl.col("clv_annuity").max().alias("high")
    )
    low = dict(bounds.select("value_tier", "low").iter_rows())
    high = dict(bounds.select("value_tier", "high").iter_rows())
    assert low["core"] > high["important"] and low["important"] > high["general"]
